"""The world zoo: the frozen models of the world, trained here on world scenes (DESIGN §10).

`build_world_zoo` trains, in order, the method's CLIP, the metric CLIP (another seed and
shape: the paper scores with other models than it trains with) and the inpainting pipeline.
Each is checked alone by `components/world/checks.py` before the method sees it. The
instruction encoder, the describe models and DINO stay the tiny random ones of
`components/zoo` (README: why each is enough, or is labelled as not meaningful).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.config import WorldZooConfig
from components.world.zoo.clip import ClipTraining, train_clip
from components.world.zoo.inpainting import CONTEXT, InpaintingTraining, train_inpainting
from components.world.zoo.scenes import ScenePool

VOCAB = 49408  # OpenAI CLIP's BPE, the tokenizer open_clip's local-dir models get
METHOD_CLIP: dict[str, Any] = {  # ViT-L/14's layout, small: 8-pixel patches, an 8x8 grid
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "patch_size": 8, "width": 96, "head_width": 32, "layers": 3},
    "text_cfg": {
        "context_length": CONTEXT,
        "vocab_size": VOCAB,
        "width": 64,
        "heads": 4,
        "layers": 2,
    },
}
METRIC_CLIP: dict[str, Any] = {  # another shape: 16-pixel patches (4x4), narrower
    "embed_dim": 48,
    "vision_cfg": {"image_size": 64, "patch_size": 16, "width": 64, "head_width": 32, "layers": 3},
    "text_cfg": {
        "context_length": CONTEXT,
        "vocab_size": VOCAB,
        "width": 48,
        "heads": 4,
        "layers": 2,
    },
}


def build_world_zoo(
    out: Path, seed: int, side: int, cfg: WorldZooConfig, progress: bool = True
) -> dict[str, Path]:
    """Train the world's models into `out/clip`, `out/metric-clip` and `out/sd-inpainting`."""
    pool = ScenePool.draw(seed, cfg.scenes, side, "zoo")
    clips = {
        "clip": (METHOD_CLIP, ClipTraining(cfg.clip_steps), seed),
        "metric-clip": (METRIC_CLIP, ClipTraining(cfg.metric_clip_steps), seed + 1),
    }
    paths = {
        name: train_clip(out / name, config, pool, training, clip_seed, progress)
        for name, (config, training, clip_seed) in clips.items()
    }
    training = InpaintingTraining(cfg.vae_steps, cfg.unet_steps)
    paths["sd-inpainting"] = train_inpainting(out / "sd-inpainting", pool, training, seed, progress)
    return paths
