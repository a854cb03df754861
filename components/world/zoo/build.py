"""The world zoo: the frozen models of the world, trained here on world scenes (DESIGN §10).

`build_world_zoo` trains, in order, the method's CLIP, the metric CLIP (another seed and
shape: the paper scores with other models than it trains with), the instruction encoder and
the inpainting pipeline, whose frozen text encoder is the method CLIP's text tower (as SD
1.5's is OpenAI CLIP's). Each is checked alone by `components/world/checks.py` before the
method sees it. The describe models and DINO stay the tiny random ones of
`components/random_models` (README: why each is enough, or is labelled as not meaningful).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import open_clip
from diffusers import StableDiffusionInpaintPipeline
from transformers import T5EncoderModel, T5Tokenizer

from components.config import MethodConfig, WorldZooConfig
from components.models.loading import load_clip
from components.world.checks import HELD_OUT, NAMESPACE, inpainting_check
from components.world.zoo.clip import ClipTraining, swapped_caption_accuracy, train_clip
from components.world.zoo.inpainting import CONTEXT, InpaintingTraining, train_inpainting
from components.world.zoo.instruction import (
    InstructionTraining,
    instruction_check,
    train_instruction_encoder,
)
from components.world.zoo.resumable import ONE_PROCESS, RunSettings, TrainingState
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


class Trained(NamedTuple):
    path: Path
    state: TrainingState  # its wall time and check curve


def build_world_zoo(
    out: Path,
    seed: int,
    side: int,
    cfg: WorldZooConfig,
    run: RunSettings = ONE_PROCESS,
    method: MethodConfig | None = None,
) -> dict[str, Trained]:
    """Train the world's models into `out/clip`, `out/metric-clip`, `out/instruction-encoder`
    (when `cfg.instruction_steps`) and `out/sd-inpainting`;
    each model's folder and training state (its wall time and check curve). With `run.curve_points`,
    each model's own check is measured along its training: the CLIPs' swapped-caption
    accuracy, and the inpainter's edit success in the ground-truth region under `method`'s
    sampler settings."""
    pool = ScenePool.draw(seed, cfg.scenes, side, "zoo")
    clips = {
        "clip": (METHOD_CLIP, seed),
        "metric-clip": (METRIC_CLIP, seed + 1),
    }
    steps = {"clip": cfg.clip_steps, "metric-clip": cfg.metric_clip_steps}
    trained = {}
    for name, (config, clip_seed) in clips.items():
        training = ClipTraining(steps[name], batch=cfg.clip_batch, lr=cfg.clip_lr)
        check = _clip_curve(seed, side) if run.curve_points else None
        trained[name] = Trained(
            *train_clip(out / name, config, pool, training, clip_seed, run, check)
        )
    clip = load_clip(f"local-dir:{trained['clip'].path}")[0]
    if cfg.instruction_steps:
        check = _instruction_curve(clip, seed, side) if run.curve_points else None
        training = InstructionTraining(cfg.instruction_steps, batch=cfg.clip_batch, lr=cfg.clip_lr)
        trained["instruction-encoder"] = Trained(
            *train_instruction_encoder(
                out / "instruction-encoder", clip, pool, training, seed, run, check
            )
        )
    training = InpaintingTraining(
        cfg.vae_steps,
        cfg.unet_steps,
        batch=cfg.unet_batch,
        vae_batch=cfg.vae_batch,
        vae_lr=cfg.vae_lr,
        unet_lr=cfg.unet_lr,
    )
    check = _inpainting_curve(method or MethodConfig(), seed, side, cfg.checks)
    trained["sd-inpainting"] = Trained(
        *train_inpainting(
            out / "sd-inpainting",
            pool,
            training,
            seed,
            clip.float().eval(),
            run,
            check if run.curve_points else None,
        )
    )
    return trained


def _clip_curve(seed: int, side: int) -> Callable[[open_clip.CLIP], float]:
    held_out = ScenePool.draw(seed, HELD_OUT, side, NAMESPACE)
    tokenizer = open_clip.SimpleTokenizer(context_length=CONTEXT)

    def check(model: open_clip.CLIP) -> float:
        accuracy = swapped_caption_accuracy(model.eval(), tokenizer, held_out, seed)
        model.train()
        return round(accuracy, 4)

    return check


def _instruction_curve(
    clip: open_clip.CLIP, seed: int, side: int
) -> Callable[[T5EncoderModel, T5Tokenizer], float]:
    held_out = ScenePool.draw(seed, HELD_OUT, side, NAMESPACE)
    return lambda encoder, tokenizer: instruction_check(encoder, tokenizer, clip, held_out, seed)


def _inpainting_curve(
    method: MethodConfig, seed: int, side: int, count: int
) -> Callable[[StableDiffusionInpaintPipeline], float]:
    def check(pipeline: StableDiffusionInpaintPipeline) -> float:
        with tempfile.TemporaryDirectory() as folder:
            pipeline.save_pretrained(folder, safe_serialization=True)
            scores = inpainting_check(folder, method, seed, side, count, progress=False)
        return scores["inpainting/edit_success_ground_truth"]

    return check
