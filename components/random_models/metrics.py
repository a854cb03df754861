"""The evaluation's metric models, tiny and random: a ViT-B/32-shaped CLIP and a DINO ViT-S/16.

MagicBrush's evaluation uses CLIP ViT-B/32 (CLIP-I, CLIP-T) and DINO ViT-S/16 (DINO) with
resize 256 -> centre crop 224 -> ImageNet normalisation. Both keep their patch size and input
resolution here (7x7 and 14x14 patch grids); only widths and depths shrink.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import BitImageProcessor, ViTConfig, ViTModel
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling

from components.random_models.clip import save_open_clip

METRIC_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 32,  # ViT-B/32: 512
    "vision_cfg": {"image_size": 224, "patch_size": 32, "width": 64, "head_width": 32, "layers": 2},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def build_metric_clip(out: Path, seed: int) -> Path:
    """Write the tiny ViT-B/32-shaped metric CLIP to `out` (open_clip local-dir) and return it."""
    return save_open_clip(out, METRIC_CLIP_CONFIG, seed)


def build_dino(out: Path, seed: int) -> Path:
    """Write the tiny DINO ViT-S/16-shaped `ViTModel` and its image processor to `out`."""
    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=224,
        patch_size=16,
        hidden_size=48,  # ViT-S: 384
        num_hidden_layers=2,  # ViT-S: 12
        num_attention_heads=3,  # ViT-S: 6
        intermediate_size=96,
    )
    ViTModel(config, add_pooling_layer=False).save_pretrained(out)  # DINO has no pooler
    # ViTImageProcessor cannot centre-crop; BitImageProcessor does MagicBrush's recipe exactly.
    BitImageProcessor(
        size={"shortest_edge": 256},
        crop_size={"height": 224, "width": 224},
        resample=PILImageResampling.BICUBIC,
        image_mean=IMAGENET_DEFAULT_MEAN,
        image_std=IMAGENET_DEFAULT_STD,
    ).save_pretrained(out)
    return out
