"""The world's CLIPs: open_clip's own CLIP class, trained contrastively on world scenes.

Each image is scored against every caption of the batch and against captions of its own scene
with one attribute swapped (NegCLIP's hard negatives): in-batch negatives teach what is in the
picture, the swapped ones teach which colour goes with which shape and place. Saved in
open_clip's local-dir format, loaded by the same `load_clip` as ViT-L/14.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F

from components.random_models.clip import save_open_clip
from components.world.zoo.resumable import ONE_PROCESS, RunSettings, TrainingState
from components.world.zoo.scenes import ScenePool, swapped_captions
from components.world.zoo.schedules import warmup_cosine


@dataclass(frozen=True)
class ClipTraining:
    steps: int
    batch: int = 64
    negatives: int = 3  # swapped captions per image
    lr: float = 1e-3
    warmup: int = 100


def train_clip(
    out: Path,
    model_cfg: dict[str, Any],
    pool: ScenePool,
    training: ClipTraining,
    seed: int,
    run: RunSettings = ONE_PROCESS,
    check: Callable[[open_clip.CLIP], float] | None = None,
) -> tuple[Path, TrainingState]:
    """Train an open_clip CLIP of `model_cfg` on `pool` and save it to `out`; `check` scores
    the model at `run.curve_points` steps along the way (its curve is in the returned state)."""
    torch.manual_seed(seed)
    model = open_clip.CLIP(**model_cfg)
    # open_clip's bundled BPE, as `get_tokenizer("local-dir:...")` gives for the saved model
    tokenizer = open_clip.SimpleTokenizer(context_length=model_cfg["text_cfg"]["context_length"])
    normalise = normaliser()
    optimiser = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=0.1)
    schedule = warmup_cosine(optimiser, training.steps, training.warmup)
    rng, sampler = (
        random.Random(f"regionedit-world-clip:{seed}"),
        torch.Generator().manual_seed(seed),
    )
    state = run.state(
        out.name,
        {"model_cfg": model_cfg, "training": training, "seed": seed},
        {"model": model, "optimiser": optimiser, "schedule": schedule},
        {"sampler": sampler},
        {"captions": rng},
    )
    start = state.restore()
    model.train()
    for step in run.steps(out.name, start, training.steps):
        index = torch.randint(len(pool), (training.batch,), generator=sampler)
        captions = pool.captions(index)
        negatives = [
            swapped_captions(pool.scenes[i], rng, training.negatives) for i in index.tolist()
        ]
        texts = captions + [c for group in negatives for c in group]
        image = F.normalize(model.encode_image(normalise(pool.images(index))), dim=-1)
        text = F.normalize(model.encode_text(tokenizer(texts)), dim=-1)
        logits = model.logit_scale.exp() * image @ text.T
        target = torch.arange(training.batch)
        loss = (
            F.cross_entropy(logits, target) + F.cross_entropy(logits[:, : training.batch].T, target)
        ) / 2
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)  # CLIP's cap: a temperature of 1/100
        if check is not None and run.on_curve(step + 1, training.steps):
            state.curve.append(
                {"step": step + 1, "check": check(model), "wall_s": round(state.elapsed(), 1)}
            )
        state.tick(step + 1, last=step + 1 == training.steps)
    return save_open_clip(out, model_cfg, seed, model.eval()), state.stop()


@torch.no_grad()
def swapped_caption_accuracy(
    clip: open_clip.CLIP, tokenizer, pool: ScenePool, seed: int, negatives: int = 3
) -> float:
    """Share of scenes whose true caption scores above all of its `negatives` swapped ones."""
    rng, normalise, hits = random.Random(f"regionedit-world-clip-eval:{seed}"), normaliser(), 0
    for start in range(0, len(pool), 64):
        index = torch.arange(start, min(start + 64, len(pool)))
        image = F.normalize(clip.encode_image(normalise(pool.images(index))), dim=-1)
        for row, i in enumerate(index.tolist()):
            texts = [pool.scenes[i].caption, *swapped_captions(pool.scenes[i], rng, negatives)]
            text = F.normalize(clip.encode_text(tokenizer(texts)), dim=-1)
            hits += int((text @ image[row]).argmax() == 0)
    return hits / len(pool)


def normaliser():
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    return lambda images: (images - mean) / std
