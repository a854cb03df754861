"""The method's frozen CLIP, tiny and random, saved as an open_clip `local-dir:` folder.

Shaped like ViT-L/14 at a smaller scale: 64-pixel images cut into 8-pixel patches give an
8x8 = 64-token grid (ViT-L/14 at 224 pixels: 16x16 = 256). The text tower keeps open_clip's
49,408-token vocabulary and 77-token context, so open_clip's bundled BPE tokenizer serves it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import open_clip
import torch
from safetensors.torch import save_file

WEIGHTS = "open_clip_model.safetensors"  # the first name open_clip looks for in a local dir

# No `hf_tokenizer_name` in text_cfg: that is what makes open_clip.get_tokenizer("local-dir:...")
# return its bundled SimpleTokenizer instead of looking for Hugging Face tokenizer files.
CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 32,  # ViT-L/14: 768
    "vision_cfg": {"image_size": 64, "patch_size": 8, "width": 64, "head_width": 32, "layers": 2},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def build_clip(out: Path, seed: int) -> Path:
    """Write the tiny method CLIP to `out` and return it."""
    return save_open_clip(out, CLIP_CONFIG, seed)


def save_open_clip(
    out: Path, model_cfg: dict[str, Any], seed: int, model: open_clip.CLIP | None = None
) -> Path:
    """`model` (default: a random open_clip CLIP from `model_cfg`, seeded), saved with OpenAI
    CLIP's preprocessing."""
    if model is None:
        torch.manual_seed(seed)
        model = open_clip.CLIP(**model_cfg)
    out.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, out / WEIGHTS)
    preprocess = {
        "size": model_cfg["vision_cfg"]["image_size"],
        "mean": list(open_clip.OPENAI_DATASET_MEAN),
        "std": list(open_clip.OPENAI_DATASET_STD),
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess}
    (out / "open_clip_config.json").write_text(
        json.dumps(config, indent=2) + "\n", encoding="utf-8"
    )
    return out
