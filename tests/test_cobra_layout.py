"""Cobra's own layouts, restated from its source, against what cobra_lit builds.

Projectors: h-zhao1997/cobra `cobra/util/nn_utils.py` (commit eb0294d) `FusedMLPProjector` (`cobra+3b`, arch
`no-align+fused-gelu-mlp`) and `FusedLDPProjector` (`cobra-ldpnet+3b`, arch `no-align+fused-ldpnet`, see
`cobra/conf/models.py`). A released checkpoint holds `projector.state_dict()` of these modules, so their key names
and shapes are what `load_cobra_checkpoint` must accept with strict matching.

Image transforms: `cobra/models/backbones/vision/dinosiglip_vit.py` and `base_vision.py` (the same code as
TRI-ML/prismatic-vlms `prismatic/models/backbones/vision/`): `resize-naive`, `resize-crop`, `letterbox`.
"""
import math

import numpy as np
import pytest
import timm
import torch
import torchvision.transforms.functional as TVF
from PIL import Image
from torch import nn
from torchvision.transforms import Compose, Resize

from cobra_lit.model import (CobraTinyConfig, ModelConfig, build_projector, build_vlm, load_cobra_checkpoint,
                             model_config)
from cobra_lit.vision import build_vision_backbone


# === Cobra's projector modules, restated (same module tree, same forward) ===
class CobraFusedMLPProjector(nn.Module):
    def __init__(self, fused_vision_dim, llm_dim):
        super().__init__()
        self.initial_projection_dim = fused_vision_dim * 4
        self.projector = nn.Sequential(
            nn.Linear(fused_vision_dim, self.initial_projection_dim, bias=True), nn.GELU(),
            nn.Linear(self.initial_projection_dim, llm_dim, bias=True), nn.GELU(),
            nn.Linear(llm_dim, llm_dim, bias=True))

    def forward(self, x): return self.projector(x)


class CobraTokenDownLayer(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.dwn = nn.Sequential(nn.AdaptiveAvgPool2d(shape))

    def forward(self, x):
        b, num_tokens, c = x.shape
        h = int(math.sqrt(num_tokens))
        assert h * h == num_tokens
        x = x.permute(0, 2, 1).reshape(b, -1, h, h)
        x = self.dwn(x)
        return x.flatten(2).transpose(1, 2)


class CobraPosInjectLayer(nn.Module):
    def __init__(self, in_dim, out_dim, stride=1):
        super().__init__()
        self.peg = nn.Sequential(nn.Conv2d(in_dim, out_dim, 3, stride, 1, bias=True, groups=out_dim))

    def forward(self, x):
        b, num_tokens, c = x.shape
        h = int(math.sqrt(num_tokens))
        assert h * h == num_tokens
        cnn_feat = x.transpose(1, 2).view(b, c, h, h)
        x = self.peg(cnn_feat) + cnn_feat
        return x.flatten(2).transpose(1, 2)


class CobraFusedLDPProjector(nn.Module):
    def __init__(self, fused_vision_dim, llm_dim):
        super().__init__()
        self.initial_projection_dim = fused_vision_dim * 4
        self.projector = nn.Sequential(
            nn.Linear(fused_vision_dim, self.initial_projection_dim, bias=True), nn.GELU(),
            nn.Linear(self.initial_projection_dim, llm_dim, bias=True),
            CobraTokenDownLayer((14, 14)), CobraPosInjectLayer(llm_dim, llm_dim, stride=1))

    def forward(self, x): return self.projector(x)


COBRA_PROJECTORS = {'cobra+3b': CobraFusedMLPProjector, 'cobra-ldpnet+3b': CobraFusedLDPProjector}

# The same, written out for Cobra 3B's widths (fused vision 1024 + 1152 = 2176, Mamba-2.8B d_model 2560)
COBRA_3B_KEYS = {
    'cobra+3b': {'projector.0.weight': (8704, 2176), 'projector.0.bias': (8704,),
                 'projector.2.weight': (2560, 8704), 'projector.2.bias': (2560,),
                 'projector.4.weight': (2560, 2560), 'projector.4.bias': (2560,)},
    'cobra-ldpnet+3b': {'projector.0.weight': (8704, 2176), 'projector.0.bias': (8704,),
                        'projector.2.weight': (2560, 8704), 'projector.2.bias': (2560,),
                        'projector.4.peg.0.weight': (2560, 1, 3, 3), 'projector.4.peg.0.bias': (2560,)},
}


def _shapes(module): return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize('model_id', ['cobra+3b', 'cobra-ldpnet+3b'])
def test_projector_keys_are_cobras(model_id):
    "The registry's 3B projector has the key names and shapes Cobra's code writes (meta device: no memory)."
    with torch.device('meta'):
        ours = build_vlm(model_id).projector
        cobra = COBRA_PROJECTORS[model_id](2176, 2560)
    test_table = COBRA_3B_KEYS[model_id]
    assert _shapes(cobra) == test_table  # the written-out table is what the restated module gives
    assert _shapes(ours) == test_table


def test_ldpnet_arch_specifier_is_cobras():
    "`cobra-ldpnet+3b` names Cobra's `no-align+fused-ldpnet` (cobra/conf/models.py `Cobra_3B_LDPNET`)."
    assert model_config('cobra-ldpnet+3b').arch_specifier == 'no-align+fused-ldpnet'


def test_fused_ldpnet_forward_is_cobras():
    "With Cobra's weights loaded strictly, the project's projector computes Cobra's output (27x27 -> 14x14, PEG)."
    torch.manual_seed(0)
    cobra = CobraFusedLDPProjector(8, 12)
    with torch.no_grad():  # a non-zero conv so the PEG and its residual both show in the output
        for p in cobra.parameters(): p.normal_(0, 0.5)
    ours = build_projector('no-align+fused-ldpnet', 8, 12, 729)
    ours.load_state_dict(cobra.state_dict(), strict=True)
    x = torch.randn(2, 729, 8)
    with torch.no_grad(): ref, got = cobra(x), ours(x)
    assert got.shape == (2, 196, 12)
    torch.testing.assert_close(got, ref)


def test_cobra_ldpnet_checkpoint_loads_strictly(tmp_path):
    "A checkpoint holding Cobra's `FusedLDPProjector` state dict loads through `load_cobra_checkpoint` (strict)."
    torch.manual_seed(0)
    model = build_vlm(CobraTinyConfig(arch_specifier='no-align+fused-ldpnet'))
    cobra = CobraFusedLDPProjector(model.vision_backbone.embed_dim, model.llm_backbone.embed_dim)
    torch.save({'model': {'projector': cobra.state_dict()}}, tmp_path / 'cobra.pt')
    assert load_cobra_checkpoint(model, tmp_path / 'cobra.pt', strict=True) == ['projector']
    for k, v in cobra.state_dict().items(): torch.testing.assert_close(model.projector.state_dict()[k], v)


# === Cobra's image transforms, restated from dinosiglip_vit.py / base_vision.py ===
class CobraLetterboxPad:
    def __init__(self, fill): self.fill = fill

    def __call__(self, image):
        (w, h), max_wh = image.size, max(image.size)
        horizontal_pad, vertical_pad = int((max_wh - w) / 2), int((max_wh - h) / 2)
        padding = (horizontal_pad, vertical_pad, horizontal_pad, vertical_pad)
        return TVF.pad(image, padding, fill=self.fill, padding_mode='constant')


def cobra_dinosiglip_transforms(backbone, strategy):
    "`{tower: transform}` as `DinoSigLIPViTBackbone.__init__` builds them for `strategy`."
    size, out = backbone.image_size, {}
    for k in backbone.keys:
        data_cfg = timm.data.resolve_model_data_config(backbone.tower(k))
        data_cfg['input_size'] = (3, size, size)
        default = timm.data.create_transform(**data_cfg, is_training=False)
        if k == 'siglip':  # "SigLIP default transform resizes to *larger* than `self.default_image_size`"
            default = Compose([Resize(size, interpolation=default.transforms[0].interpolation),
                               *default.transforms[1:]])
        if strategy == 'resize-naive':
            out[k] = Compose([Resize((size, size), interpolation=default.transforms[0].interpolation),
                              *default.transforms[1:]])
        elif strategy == 'resize-crop': out[k] = default
        else: out[k] = Compose([CobraLetterboxPad(tuple(int(x * 255) for x in data_cfg['mean'])),
                                *default.transforms])
    return out


def _stripes(w=120, h=40):
    "A wide image: left third red, middle green, right third blue."
    a = np.zeros((h, w, 3), np.uint8)
    a[:, :w // 3, 0] = 255; a[:, w // 3:2 * w // 3, 1] = 255; a[:, 2 * w // 3:, 2] = 255
    return Image.fromarray(a)


@pytest.mark.parametrize('strategy', ['resize-naive', 'resize-crop', 'letterbox'])
def test_image_transform_is_cobras(strategy):
    "Each strategy gives Cobra's pixel values for a non-square image, tower by tower."
    torch.manual_seed(0)
    vb = build_vision_backbone('dinosiglip-tiny', image_resize_strategy=strategy)
    rng = np.random.RandomState(0)
    for img in [_stripes(), Image.fromarray(rng.randint(0, 255, (90, 131, 3), dtype=np.uint8))]:
        got, ref = vb.image_transform(img), cobra_dinosiglip_transforms(vb, strategy)
        assert sorted(got) == ['dino', 'siglip']
        for k, t in ref.items(): torch.testing.assert_close(got[k], t(img))


def test_strategies_differ_as_documented():
    "Letterbox borders are the normalisation mean (~0 after normalising); crop keeps the middle; naive squashes."
    pv = {s: build_vision_backbone('dinosiglip-tiny', image_resize_strategy=s).image_transform(_stripes())
          for s in ['resize-naive', 'resize-crop', 'letterbox']}
    for k in ['dino', 'siglip']:
        naive, crop, box = pv['resize-naive'][k], pv['resize-crop'][k], pv['letterbox'][k]
        assert naive.shape == crop.shape == box.shape == (3, 56, 56)
        # letterbox: 120 x 40 padded to 120 x 120 (40 rows of mean colour above and below) -> 56 px: ~18 rows each
        assert box[:, :15].abs().max() < 0.02 and box[:, -15:].abs().max() < 0.02
        assert (naive[:, :15] - naive[:, 28:29]).abs().max() < 1e-4  # naive: every row is the image's (squashed)
        # resize-crop: shortest side to 56, centre crop -> only the green middle third is left
        assert crop[1, :, 5:-5].min() > crop[0, :, 5:-5].max() + 1 and crop[1, :, 5:-5].min() > crop[2, :, 5:-5].max() + 1
        assert naive[0, :, :10].mean() > naive[1, :, :10].mean() + 1  # naive keeps the red left third
        assert (naive - crop).abs().max() > 1


def test_unknown_resize_strategy_is_refused():
    "An unknown strategy is a ValueError naming the valid ones, when the config or the backbone is built."
    for build in [lambda: CobraTinyConfig(image_resize_strategy='squash'),
                  lambda: build_vision_backbone('dinosiglip-tiny', image_resize_strategy='squash')]:
        with pytest.raises(ValueError, match="'squash'.*resize-naive.*resize-crop.*letterbox"): build()
    cfg = CobraTinyConfig(); cfg.image_resize_strategy = 'squash'  # set after construction: build_vlm still checks
    with pytest.raises(ValueError, match='resize-naive'): build_vlm(cfg)


def test_build_vlm_uses_the_configs_strategy():
    "`build_vlm` builds the transform the config names (it was never read before)."
    m = build_vlm(CobraTinyConfig(image_resize_strategy='letterbox'))
    ref = cobra_dinosiglip_transforms(m.vision_backbone, 'letterbox')
    got = m.image_transform(_stripes())
    for k, t in ref.items(): torch.testing.assert_close(got[k], t(_stripes()))
