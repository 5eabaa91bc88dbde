"""GPU checks of cobra_lit.grpo. Skipped without CUDA; also runs without pytest: `python tests/test_grpo_gpu.py`
(bench/gpu_check.sh does), or `python tests/test_grpo_gpu.py --device cpu` to dry-run the checks that need no CUDA.
1. The CUDA-graph rollout samples the same tokens with the same log-probs as the eager rollout (fp32).
2. bf16 rollouts: the sampling pass's log-probs against the training forward's under the same autocast (what the
   GRPO ratio starts from); prints the gap and bounds it.
3. `python -m cobra_lit.grpo` on the GPU (bf16 autocast, CUDA-graph rollouts): 2 steps, logs, checkpoint, summary.
"""
import json, os, subprocess, sys, tempfile
from pathlib import Path

import torch

from gpu_script import needs_gpu, run_tests, tiny_vlm

DEV = 'cuda'


def _setup():
    "`tiny_vlm` on `DEV`, the tokenizer, 2 images and 2 prompts."
    from PIL import Image
    from cobra_lit.data import format_prompt, load_tokenizer
    ims = [Image.new('RGB', (80, 60), (200, 30, 30)), Image.new('RGB', (64, 64), (20, 40, 220))]
    prompts = [format_prompt('What colour is the shape?'), format_prompt('Count the shapes.')]
    return tiny_vlm(DEV), load_tokenizer(), ims, prompts


def _rollout(m, tok, ims, prompts, G, T, cuda_graph, autocast=None):
    from cobra_lit.grpo import rollout, sample_uniforms
    u = sample_uniforms(7, 0, list(range(len(prompts) * G)), T)
    ctx = torch.autocast(DEV, dtype=autocast) if autocast else torch.autocast(DEV, enabled=False)
    with ctx: return rollout(m, tok, ims, prompts, G, u, T, temperature=1.0, cuda_graph=cuda_graph)


@needs_gpu
def test_graph_rollout_equals_eager():
    if DEV != 'cuda': return print('skip: the CUDA graph needs CUDA')
    m, tok, ims, prompts = _setup()
    g = _rollout(m, tok, ims, prompts, 4, 24, True)
    e = _rollout(m, tok, ims, prompts, 4, 24, False)
    assert torch.equal(g.completion_ids, e.completion_ids), (g.completion_ids, e.completion_ids)
    torch.testing.assert_close(g.logps, e.logps, rtol=0, atol=1e-4)
    print(f'graph == eager rollout: {int(g.mask.sum())} tokens, log-probs within 1e-4')


@needs_gpu
def test_bf16_rollout_logps_match_training_forward():
    from cobra_lit.generate import index_pixel_values, pixel_values_for
    from cobra_lit.grpo import completion_logps
    m, tok, ims, prompts = _setup()
    G = 4
    ro = _rollout(m, tok, ims, prompts, G, 32, None, torch.bfloat16)
    rows = list(range(len(prompts) * G))
    pv = index_pixel_values(pixel_values_for(m, ims, len(ims))[0], torch.tensor(rows) // G)
    with torch.no_grad(): lp = completion_logps(m, ro, rows, pv, 1.0, torch.bfloat16).float().cpu()
    gap = ((lp - ro.logps) * ro.mask).abs()
    n = ro.mask.sum()
    mean, mx = float(gap.sum() / n), float(gap.max())
    print(f'bf16 rollout vs training forward log-probs over {int(n)} tokens: mean abs gap {mean:.4f}, max {mx:.4f}')
    assert mean < 0.05 and mx < 1.0, (mean, mx)


@needs_gpu
def test_grpo_cli_on_gpu():
    from cobra_lit.model import build_vlm, save_cobra_checkpoint
    from cobra_lit.train import DemoDatasetConfig
    d = Path(tempfile.mkdtemp())
    DemoDatasetConfig(dataset_root=d/'demo', n_train=16, n_test=4).prepare()
    torch.manual_seed(0); save_cobra_checkpoint(build_vlm('cobra-tiny'), d/'sft.pt')
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TOKENIZERS_PARALLELISM': 'false',  # a reward a random model varies on
           'PYTHONPATH': os.pathsep.join([str(Path(__file__).parent), os.environ.get('PYTHONPATH', '')])}
    if DEV == 'cpu': env['CUDA_VISIBLE_DEVICES'] = ''
    cmd = [sys.executable, '-m', 'cobra_lit.grpo', '--pretrained_checkpoint', str(d/'sft.pt'), '--run_id', 'gpu',
           '--run_root_dir', str(d/'runs'), '--dataset.dataset_root', str(d/'demo'), '--dataset.n_train', '16',
           '--dataset.n_test', '4', '--max_steps', '2', '--prompts_per_step', '2', '--num_generations', '4',
           '--max_completion_length', '16', '--optim.learning_rate', '1e-3', '--eval_limit', '4',
           '--rewards', 'grpo_rewards:vowel_share', '--reward_weights', '1']
    p = subprocess.run(cmd, cwd=d, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-4000:]
    run = d/'runs'/'gpu'
    rows = [json.loads(l) for l in (run/'logs'/'train.jsonl').read_text().splitlines()]
    assert [r['step'] for r in rows] == [1, 2], rows
    assert all(r['grad_norm'] > 0 and r['logp_gap'] < 1.0 for r in rows), rows
    assert (run/'checkpoints'/'checkpoint-latest.pt').exists() and (run/'summary.json').exists()
    print('grpo on', DEV, {k: rows[-1][k] for k in ('reward_mean', 'logp_gap', 'rollout_tokens_per_s', 'peak_mem_mb')})


if __name__ == '__main__':
    if '--device' in sys.argv: DEV = sys.argv[sys.argv.index('--device') + 1]
    run_tests(globals(), DEV)
