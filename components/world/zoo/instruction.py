"""The world's instruction encoder: a T5 encoder (FLAN-T5's layout, gated-GELU feed-forward)
whose token states live in the method CLIP's image space.

Trained as LiT trains a text tower (Zhai et al., 2022): the method CLIP's image tower is
locked, and the T5's mean-pooled token states are contrasted with its image embeddings, over
in-batch negatives and captions with one attribute swapped (as the CLIPs train). Its width is
CLIP's embedding width, so the method's fixed projection between the two is the identity and
F_ins reaches the region head in the space of the image tokens it attends to. The tokenizer is
a SentencePiece model of the zoo's own captions and world-style instructions (nothing a test
set holds). Saved as `T5EncoderModel` + `T5Tokenizer`, loaded by `load_instruction_encoder`
as google/flan-t5-base is; the pooling is training's only: the method reads the token states.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from transformers import T5Config, T5EncoderModel, T5Tokenizer

from components.random_models.text import sentencepiece_tokenizer
from components.world.edits import KINDS, edit_scene, options
from components.world.zoo.clip import normaliser
from components.world.zoo.resumable import ONE_PROCESS, RunSettings, TrainingState
from components.world.zoo.scenes import ScenePool, swapped_captions
from components.world.zoo.schedules import warmup_cosine


@dataclass(frozen=True)
class InstructionTraining:
    steps: int
    batch: int = 64
    negatives: int = 3  # swapped captions per image
    lr: float = 1e-3
    warmup: int = 100
    layers: int = 2
    heads: int = 4


def train_instruction_encoder(
    out: Path,
    clip: open_clip.CLIP,
    pool: ScenePool,
    training: InstructionTraining,
    seed: int,
    run: RunSettings = ONE_PROCESS,
    check: Callable[[T5EncoderModel, T5Tokenizer], float] | None = None,
) -> tuple[Path, TrainingState]:
    """Train a T5 encoder against `clip`'s locked image tower on `pool`; save it to `out`."""
    tokenizer = sentencepiece_tokenizer(world_text(pool, seed), vocab_size=400)
    width = clip.visual.output_dim
    torch.manual_seed(seed)
    encoder = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=width,
            d_kv=width // training.heads,
            d_ff=2 * width,
            num_layers=training.layers,
            num_heads=training.heads,
            feed_forward_proj="gated-gelu",  # FLAN-T5's feed-forward
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
        )
    )
    clip = clip.eval().requires_grad_(False)
    temperature = _Temperature()
    optimiser = torch.optim.AdamW(
        [*encoder.parameters(), *temperature.parameters()], lr=training.lr
    )
    schedule = warmup_cosine(optimiser, training.steps, training.warmup)
    rng, sampler = (
        random.Random(f"regionedit-world-t5:{seed}"),
        torch.Generator().manual_seed(seed),
    )
    state = run.state(
        "instruction-encoder",
        {"training": training, "seed": seed, "width": width},
        {
            "encoder": encoder,
            "temperature": temperature,
            "optimiser": optimiser,
            "schedule": schedule,
        },
        {"sampler": sampler},
        {"captions": rng},
    )
    start = state.restore()
    normalise = normaliser()
    encoder.train()
    for step in run.steps("instruction encoder", start, training.steps):
        index = torch.randint(len(pool), (training.batch,), generator=sampler)
        negatives = [
            swapped_captions(pool.scenes[i], rng, training.negatives) for i in index.tolist()
        ]
        texts = pool.captions(index) + [c for group in negatives for c in group]
        with torch.no_grad():
            image = F.normalize(clip.encode_image(normalise(pool.images(index))), dim=-1)
        text = pooled_text(encoder, tokenizer, texts)
        logits = temperature.logit_scale.exp() * image @ text.T
        target = torch.arange(training.batch)
        loss = (
            F.cross_entropy(logits, target) + F.cross_entropy(logits[:, : training.batch].T, target)
        ) / 2
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            temperature.logit_scale.clamp_(0, 4.6052)  # CLIP's cap: a temperature of 1/100
        if check is not None and run.on_curve(step + 1, training.steps):
            accuracy = check(encoder.eval(), tokenizer)
            encoder.train()
            state.curve.append(
                {"step": step + 1, "check": accuracy, "wall_s": round(state.elapsed(), 1)}
            )
        state.tick(step + 1, last=step + 1 == training.steps)
    encoder.eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out, state.stop()


def pooled_text(encoder: T5EncoderModel, tokenizer: T5Tokenizer, texts: list[str]) -> torch.Tensor:
    """The mean of each text's token states (padding left out), unit length: (B, d)."""
    batch = tokenizer(texts, padding="longest", return_tensors="pt")
    states = encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    keep = batch.attention_mask[..., None].float()
    return F.normalize((states.last_hidden_state * keep).sum(1) / keep.sum(1), dim=-1)


@torch.no_grad()
def instruction_check(
    encoder: T5EncoderModel,
    tokenizer: T5Tokenizer,
    clip: open_clip.CLIP,
    held_out: ScenePool,
    seed: int,
    negatives: int = 3,
) -> float:
    """Swapped-caption accuracy of the pooled T5 states against `clip`'s image embeddings."""
    rng, normalise, hits = random.Random(f"regionedit-world-t5-eval:{seed}"), normaliser(), 0
    for start in range(0, len(held_out), 64):
        index = torch.arange(start, min(start + 64, len(held_out)))
        image = F.normalize(clip.encode_image(normalise(held_out.images(index))), dim=-1)
        for row, i in enumerate(index.tolist()):
            scene = held_out.scenes[i]
            texts = [scene.caption, *swapped_captions(scene, rng, negatives)]
            hits += int((pooled_text(encoder, tokenizer, texts) @ image[row]).argmax() == 0)
    return round(hits / len(held_out), 4)


def world_text(pool: ScenePool, seed: int, count: int = 2000) -> list[str]:
    """The tokenizer's corpus: `count` of the zoo's captions and an instruction of each kind
    that applies to one of their objects (worded as the world's edits are)."""
    rng, lines = random.Random(f"regionedit-world-t5-text:{seed}"), []
    for scene in pool.scenes[:count]:
        lines.append(scene.caption)
        index = rng.randrange(len(scene.objects))
        for kind in KINDS:
            if options(scene, index, kind):
                lines.append(edit_scene(scene, index, kind, rng).t_ins)
    return lines


class _Temperature(torch.nn.Module):
    """The contrastive loss's learned temperature, as CLIP's `logit_scale`."""

    def __init__(self) -> None:
        super().__init__()
        self.logit_scale = torch.nn.Parameter(torch.tensor(2.659))  # log(1/0.07), CLIP's start
