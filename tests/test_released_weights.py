"""The README's cobra-3b command starts from the released weights, or stops with one clear line.

Offline, on CPU: a temporary Hugging Face cache plays the hub (`HF_HUB_OFFLINE=1`, `HF_HUB_CACHE` a temp folder),
holding stand-in weight files under the REAL repo ids (timm's DINOv2 / SigLIP repos, `xiuyul/mamba-2.8b-zephyr`).
The cobra-3b registry entries are patched to tiny shapes of the same architectures, so the command goes through
the real code path (`hf_hub_download`, timm's `pretrained=True` file loader, the Mamba file reader) without 12 GB.
"""
import os, subprocess, sys, time
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants as hf_constants
from safetensors.torch import save_file

from cobra_lit import model as M, vision as V
from cobra_lit.model import LLM_BACKBONES, build_vlm, load_cobra, save_cobra_checkpoint
from cobra_lit.train import build_model, checkpoint_modules, parse_train_config
from cobra_lit.vision import DINO_L, VISION_BACKBONES, VisionBackboneSpec

ROOT = Path(__file__).resolve().parents[1]
DINO_REPO, SIGLIP_REPO, LLM_REPO = f'timm/{DINO_L}', 'timm/vit_so400m_patch14_siglip_384.webli', 'xiuyul/mamba-2.8b-zephyr'


def put_in_cache(root, repo_id, filename, tensors):
    "Write `tensors` as `filename` of model repo `repo_id` in the Hugging Face cache layout under `root`."
    repo = Path(root) / f"models--{repo_id.replace('/', '--')}"
    snap = repo / 'snapshots' / ('0' * 40); snap.mkdir(parents=True, exist_ok=True)
    (repo / 'refs').mkdir(exist_ok=True); (repo / 'refs' / 'main').write_text('0' * 40)
    save_file({k: v.contiguous().clone() for k, v in tensors.items()}, str(snap / filename))


@pytest.fixture
def hub(tmp_path, monkeypatch):
    "An empty offline HF cache, and cobra-3b's backbones at tiny shapes (same timm models, same hub ids)."
    cache = tmp_path / 'hf-cache'; cache.mkdir()
    monkeypatch.setattr(hf_constants, 'HF_HUB_CACHE', str(cache))
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', True)
    tiny_v = VISION_BACKBONES['dinosiglip-tiny']
    monkeypatch.setitem(VISION_BACKBONES, 'dinosiglip-vit-so-384px', VisionBackboneSpec(tiny_v.towers, 56))  # released
    llm = {k: v for k, v in LLM_BACKBONES['mamba-tiny'].items() if k != 'ssm_decay_init'}
    monkeypatch.setitem(LLM_BACKBONES, 'mamba-2.8b-zephyr', dict(llm, hub_id=LLM_REPO))
    return cache


def stand_in_towers(cache):
    "Seeded random tower weights, placed in the cache as the released DINOv2 and SigLIP files."
    torch.manual_seed(11); vb = V.build_vision_backbone('dinosiglip-tiny')
    ref = {k: vb.tower(k).state_dict() for k in vb.keys}
    put_in_cache(cache, DINO_REPO, 'model.safetensors', ref['dino'])
    put_in_cache(cache, SIGLIP_REPO, 'model.safetensors', ref['siglip'])
    return ref


def stand_in_llm(cache):
    "Seeded random Mamba weights, placed in the cache as the released LLM file (mamba_ssm key names, head tied)."
    torch.manual_seed(12); ref = M.MambaLLMBackbone('mamba-2.8b-zephyr').llm.state_dict()
    put_in_cache(cache, LLM_REPO, 'model.safetensors', {k.replace('backbone.embeddings.', 'backbone.embedding.'): v
                                                        for k, v in ref.items() if k != 'lm_head.weight'})
    return ref


def assert_same(module, ref: dict):
    sd = module.state_dict()
    assert sorted(sd) == sorted(ref)
    for k, v in ref.items(): assert torch.equal(sd[k], v), k


def test_finetune_command_towers_released_llm_from_checkpoint(hub, tmp_path):
    towers = stand_in_towers(hub)  # the LLM is NOT in the cache: the checkpoint supplies it, so it is never fetched
    torch.manual_seed(13); src = build_vlm('cobra-3b')
    ck = save_cobra_checkpoint(src, tmp_path / 'cobra.pt')  # Cobra's layout: projector + llm_backbone
    cfg = parse_train_config(['--model.type', 'cobra-3b', '--stage', 'finetune', '--pretrained_checkpoint', str(ck)])
    assert cfg.pretrained_backbones is None and cfg.model.vision_backbone_id == 'dinosiglip-vit-so-384px'
    model = build_model(cfg)
    assert model.vision_backbone.loaded_pretrained == {'dino': True, 'siglip': True}
    for k, ref in towers.items(): assert_same(model.vision_backbone.tower(k), ref)
    assert_same(model.llm_backbone, src.llm_backbone.state_dict())
    assert_same(model.projector, src.projector.state_dict())
    assert not model.llm_backbone.loaded_pretrained  # built empty, then filled from the checkpoint
    assert checkpoint_modules(model, cfg) == ['projector', 'llm_backbone']  # released towers are not saved


def test_no_checkpoint_llm_released(hub):
    towers, llm = stand_in_towers(hub), stand_in_llm(hub)
    model = build_model(parse_train_config(['--model.type', 'cobra-3b', '--stage', 'align']))
    assert model.llm_backbone.loaded_pretrained
    assert_same(model.llm_backbone.llm, llm)
    for k, ref in towers.items(): assert_same(model.vision_backbone.tower(k), ref)


def test_explicit_random_fetches_nothing(hub):
    cfg = parse_train_config(['--model.type', 'cobra-3b', '--stage', 'align', '--pretrained_backbones', 'false'])
    model = build_model(cfg)  # the cache is empty: any fetch would raise
    assert model.vision_backbone.loaded_pretrained == {'dino': False, 'siglip': False}
    assert not model.llm_backbone.loaded_pretrained
    assert checkpoint_modules(model, cfg, warn=False) == ['vision_backbone', 'projector']


def test_missing_llm_named_alone(hub):
    stand_in_towers(hub)
    with pytest.raises(ValueError) as e: build_model(parse_train_config(['--model.type', 'cobra-3b']))
    assert isinstance(e.value, V.WeightsUnavailableError)
    msg = str(e.value)
    assert f'LLM {LLM_REPO}/model.safetensors: offline (HF_HUB_OFFLINE=1) and not in the Hugging Face cache' in msg
    assert 'vision tower' not in msg and '\n' not in msg


def test_tiny_demo_fetches_nothing(hub):
    model = build_model(parse_train_config([]))  # the no-argument run: cobra-tiny, empty offline cache
    assert not any(model.vision_backbone.loaded_pretrained.values()) and not model.llm_backbone.loaded_pretrained


def test_load_cobra_released_id_offline(hub):
    for typed in ['cobra+3b', 'cobra-3b']:
        with pytest.raises(FileNotFoundError) as e: load_cobra(typed)
        assert str(e.value).startswith(
            f'{typed}: not a run folder or file here; tried the released checkpoint han1997/cobra/cobra+3b on the '
            f'Hugging Face hub (checkpoints/latest-checkpoint.pt): offline (HF_HUB_OFFLINE=1) and not in the Hugging '
            f'Face cache {hub}')
    with pytest.raises(FileNotFoundError, match='tried the released checkpoint han1997/cobra/cobra-ldpnet\\+3b'):
        load_cobra('cobra-ldpnet+3b')


def test_load_cobra_released_id_never_downloads_llm(hub, tmp_path):
    "The released checkpoint holds the LLM: load_cobra fetches the towers only (the LLM file is not in the cache)."
    towers = stand_in_towers(hub)
    torch.manual_seed(14); src = build_vlm('cobra-3b')
    snap = hub / 'models--han1997--cobra' / 'snapshots' / ('0' * 40) / 'cobra+3b' / 'checkpoints'
    snap.mkdir(parents=True); (hub / 'models--han1997--cobra' / 'refs').mkdir()
    (hub / 'models--han1997--cobra' / 'refs' / 'main').write_text('0' * 40)
    save_cobra_checkpoint(src, snap / 'latest-checkpoint.pt')
    model = load_cobra('cobra+3b')
    assert_same(model.llm_backbone, src.llm_backbone.state_dict())
    for k, ref in towers.items(): assert_same(model.vision_backbone.tower(k), ref)


def test_train_cli_offline_one_line(tmp_path):
    "The README's finetune command, real cobra-3b, nothing cached: exit 2, one line, before building the model."
    (tmp_path / 'hf').mkdir()
    ck = tmp_path / 'cobra.pt'
    torch.save({'model': {'projector': {}, 'llm_backbone': {}}}, ck)  # what the command reads before the weights fail
    env = dict(os.environ, HF_HUB_OFFLINE='1', HF_HOME=str(tmp_path / 'hf'), HF_HUB_CACHE=str(tmp_path / 'hf' / 'hub'),
               TOKENIZERS_PARALLELISM='false', PYTHONPATH=str(ROOT))
    env.pop('RANK', None)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, '-m', 'cobra_lit.train', '--dataset.type', 'llava-cot-100k',
                        '--dataset.dataset_root', str(tmp_path / 'data'), '--model.type', 'cobra-3b', '--stage',
                        'finetune', '--pretrained_checkpoint', str(ck), '--run_id', 'cot-ft', '--seed', '7',
                        '--run_root_dir', str(tmp_path / 'runs')], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=300)
    secs = time.perf_counter() - t0
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 2, p.stderr[-3000:]
    assert len(lines) == 1 and 'Traceback' not in p.stderr, p.stderr[-3000:]
    line = lines[0]
    assert ' ERROR WeightsUnavailableError: released weights not available: ' in line
    assert f'vision tower {DINO_REPO}/model.safetensors, vision tower {SIGLIP_REPO}/model.safetensors: offline' in line
    assert 'LLM' not in line  # the checkpoint holds llm_backbone: the 5.6 GB LLM is never asked for
    assert str(tmp_path / 'hf' / 'hub') in line and '--pretrained_backbones false' in line
    assert secs < 120, secs  # no 3B model was allocated (that alone takes minutes and ~12 GB on CPU)
    assert not (tmp_path / 'runs').exists()  # failed before the run folder was made (no empty run left behind)
