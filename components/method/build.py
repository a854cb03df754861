"""Assemble the method from params: every model through its one loader, the head on top."""

from __future__ import annotations

from components.config import MethodConfig, ModelsConfig
from components.generation.inpainting import InpaintingGenerator
from components.method.encoders import FrozenEncoders
from components.method.model import RegionEditModel
from components.models.inpainting import load_inpainting
from components.models.loading import load_clip, load_instruction_encoder


def build_region_edit_model(models: ModelsConfig, method: MethodConfig) -> RegionEditModel:
    """Frozen CLIP, T5 encoder and SD inpainting (from ids or local folders) + a fresh head."""
    clip, _, clip_tokenizer = load_clip(models.clip, models.clip_pretrained)
    t5_tokenizer, t5_encoder = load_instruction_encoder(
        models.instruction_encoder, models.trust_remote_code
    )
    encoders = FrozenEncoders(
        clip, clip_tokenizer, t5_tokenizer, t5_encoder, method.instruction_tokens
    )
    parts = load_inpainting(models.inpainting, method.scheduler, models.trust_remote_code)
    return RegionEditModel(encoders, InpaintingGenerator(parts), method)
