"""The frozen features of a sample that never change during training (DESIGN §4, issue 8).

T_o, T_e (CLIP text), F_ins (instruction tokens), the generator's text conditioning of t_e and
the source latents z_src depend only on the sample, never on the head: the `features` stage
computes them once and the training step reads them instead of running four frozen encoders per
step.

Not cached: the source's CLIP image features F_img (N×d) and I_ori. At paper size F_img is
256×768 values, 393 KB per sample in fp16 (about 2 TB over 5M samples, ten times the shards),
to save one ViT-L/14 forward that is a few per cent of a step dominated by K guided UNet calls
and the CLIP forward and backward on the result; CLIP stays loaded for the result anyway, and
the image tokens stay free to follow any change to the image pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from components.generation.generator import Generator
from components.method.composition import resized
from components.method.encoders import FrozenEncoders


@dataclass
class CachedFeatures:
    """One batch's cacheable frozen features; what `RegionEditModel.forward(cached=)` takes."""

    t_o: Tensor  # (B, d) T_o: CLIP text embedding of t_o, unit length
    t_e: Tensor  # (B, d) T_e
    f_ins: Tensor  # (B, M, d) F_ins: instruction tokens in CLIP's space
    ins_padding: Tensor  # (B, M) bool, True = padding
    prompt: dict[str, Tensor]  # the generator's conditioning of t_e by name: "prompt" (B, L, D)
    unconditional: dict[str, Tensor]  # the empty prompt's (batch 1: the same for every sample)
    z_src: Tensor  # (B, c, h, w) scaled VAE latents of the source (the distribution's mode)

    def to(self, device: torch.device | str) -> CachedFeatures:
        return CachedFeatures(**{f.name: _to(getattr(self, f.name), device) for f in fields(self)})


def _to(value: Tensor | dict[str, Tensor], device: torch.device | str):
    if isinstance(value, dict):
        return {name: tensor.to(device) for name, tensor in value.items()}
    return value.to(device)


@torch.no_grad()
def cacheable_features(
    encoders: FrozenEncoders,
    generator: Generator,
    images: Tensor,
    t_o: list[str],
    t_ins: list[str],
    t_e: list[str],
    z_src_side: int,
) -> CachedFeatures:
    """Images (B, 3, H, W) in [0, 1] at `method.resolution`, and the three texts; z_src is
    encoded at `z_src_side`, where the generator runs (the training step's
    `method.in_training.resolution`, an edit's `method.resolution`)."""
    f_ins, ins_padding = encoders.instruction(t_ins)
    conditioning = generator.encode_prompt(t_e)
    return CachedFeatures(
        t_o=encoders.text(t_o),
        t_e=encoders.text(t_e),
        f_ins=f_ins,
        ins_padding=ins_padding,
        prompt=conditioning.text,
        unconditional={name: value[:1] for name, value in conditioning.unconditional.items()},
        z_src=generator.encode_source(resized(images, z_src_side) * 2 - 1),
    )
