"""Assemble the method from params: every model through its one loader, the head on top."""

from __future__ import annotations

from components.config import MethodConfig, ModelsConfig
from components.generation import load_generator
from components.generation.generator import Generator
from components.method.encoders import FrozenEncoders
from components.method.model import RegionEditModel
from components.models.loading import load_clip, load_instruction_encoder


def build_frozen_parts(
    models: ModelsConfig, instruction_tokens: int, method: MethodConfig | None = None
) -> tuple[FrozenEncoders, Generator]:
    """Frozen CLIP and T5 encoder, and the frozen generator (ids or folders), with `method`'s
    sampler and speed options (the defaults without it)."""
    method = method or MethodConfig()
    return build_encoders(models, instruction_tokens), load_generator(
        models.inpainting,
        method.scheduler,
        models.trust_remote_code,
        method.attention,
        method.channels_last,
        method.compile_unet,
    )


def build_encoders(models: ModelsConfig, instruction_tokens: int) -> FrozenEncoders:
    clip, _, clip_tokenizer = load_clip(models.clip, models.clip_pretrained)
    t5_tokenizer, t5_encoder = load_instruction_encoder(
        models.instruction_encoder, models.trust_remote_code
    )
    return FrozenEncoders(clip, clip_tokenizer, t5_tokenizer, t5_encoder, instruction_tokens)


def build_region_edit_model(models: ModelsConfig, method: MethodConfig) -> RegionEditModel:
    """The frozen parts + a fresh head."""
    encoders, generator = build_frozen_parts(models, method.instruction_tokens, method)
    return RegionEditModel(encoders, generator, method)
