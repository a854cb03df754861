"""Assemble the method from params: every model through its one loader, the head on top."""

from __future__ import annotations

from components.config import MethodConfig, ModelsConfig
from components.generation.inpainting import InpaintingGenerator
from components.method.encoders import FrozenEncoders
from components.method.model import RegionEditModel
from components.models.inpainting import InpaintingParts, load_inpainting
from components.models.loading import load_clip, load_instruction_encoder


def build_frozen_parts(
    models: ModelsConfig, instruction_tokens: int, scheduler: str | None = None
) -> tuple[FrozenEncoders, InpaintingGenerator]:
    """Frozen CLIP and T5 encoder, and the frozen SD inpainting generator (ids or folders)."""
    clip, _, clip_tokenizer = load_clip(models.clip, models.clip_pretrained)
    t5_tokenizer, t5_encoder = load_instruction_encoder(
        models.instruction_encoder, models.trust_remote_code
    )
    encoders = FrozenEncoders(clip, clip_tokenizer, t5_tokenizer, t5_encoder, instruction_tokens)
    parts = load_inpainting(models.inpainting, scheduler, models.trust_remote_code)
    return encoders, InpaintingGenerator(parts)


def generator_for(parts: InpaintingParts, method: MethodConfig) -> InpaintingGenerator:
    """The generator on `parts` with `method`'s speed options (attention, layout, compile)."""
    return InpaintingGenerator(parts, method.attention, method.channels_last, method.compile_unet)


def build_region_edit_model(models: ModelsConfig, method: MethodConfig) -> RegionEditModel:
    """The frozen parts + a fresh head."""
    encoders, generator = build_frozen_parts(models, method.instruction_tokens, method.scheduler)
    return RegionEditModel(encoders, generator_for(generator.parts, method), method)
