"""A tiny, random SDXL inpainting pipeline saved as a diffusers folder, and SDXL's shapes.

The folder has the layout of stable-diffusion-xl-1.0-inpainting-0.1 (unet/ with 9 input
channels and SDXL's added text-time embedding, vae/, text_encoder/ + tokenizer/,
text_encoder_2/ + tokenizer_2/ with a projection, scheduler/ with SDXL's Euler sampler), so the
loader and `StableDiffusionXLInpaintPipeline` both read it. `PAPER_SHAPE` is SDXL's size (random
weights), for the FLOP and speed benchmarks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import (
    EulerDiscreteScheduler,
    StableDiffusionXLInpaintPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from components.random_models.inpainting import PAPER_SHAPE as SD_PAPER_SHAPE
from components.random_models.inpainting import (
    SD_NOISE_SCHEDULE,
    TEXT_WIDTH,
    autoencoder,
    character_tokenizer,
    clip_text_config,
)
from components.random_models.inpainting import TINY_SHAPE as SD_TINY_SHAPE

TIME_EMBED = {"tiny": 8, "paper": 256}  # addition_time_embed_dim: per time id
TIME_IDS = 6  # original size (2), crop corner (2), target size (2)
TINY_SHAPE: dict[str, dict[str, Any]] = {
    "unet": {
        "sample_size": 8,
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "transformer_layers_per_block": (1, 2),
        "attention_head_dim": (2, 4),
        "norm_num_groups": 16,
        "addition_time_embed_dim": TIME_EMBED["tiny"],
    },
    "vae": SD_TINY_SHAPE.vae,
    "text": SD_TINY_SHAPE.text,
    "text_2": {**SD_TINY_SHAPE.text, "projection_dim": TEXT_WIDTH},
}
# stable-diffusion-xl-1.0-inpainting-0.1: SDXL base's UNet with 9 input channels, 1024 pixels
PAPER_SHAPE: dict[str, dict[str, Any]] = {
    "unet": {
        "sample_size": 128,
        "block_out_channels": (320, 640, 1280),
        "layers_per_block": 2,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        "transformer_layers_per_block": (1, 2, 10),
        "attention_head_dim": (5, 10, 20),
        "addition_time_embed_dim": TIME_EMBED["paper"],
    },
    "vae": {**SD_PAPER_SHAPE.vae, "sample_size": 1024, "force_upcast": True},
    "text": SD_PAPER_SHAPE.text,  # CLIP ViT-L/14's text tower
    "text_2": {  # OpenCLIP ViT-bigG/14's text tower
        "hidden_size": 1280,
        "intermediate_size": 5120,
        "num_hidden_layers": 32,
        "num_attention_heads": 20,
        "hidden_act": "gelu",
        "projection_dim": 1280,
    },
}


def build_sdxl_inpainting(out: Path, seed: int) -> Path:
    """Write the tiny SDXL inpainting pipeline to `out`."""
    pipeline = StableDiffusionXLInpaintPipeline(**sdxl_parts(seed, TINY_SHAPE))
    pipeline.save_pretrained(out, safe_serialization=True)
    return out


def sdxl_parts(seed: int, shape: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The pipeline's components of `shape`, seeded (built under `init_empty_weights` by the
    paper-size benchmarks, where the seed is moot)."""
    tokenizer = character_tokenizer()
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(clip_text_config(tokenizer, shape["text"]))
    torch.manual_seed(seed + 3)
    text_encoder_2 = CLIPTextModelWithProjection(clip_text_config(tokenizer, shape["text_2"]))
    pooled = shape["text_2"]["projection_dim"]
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        in_channels=9,  # [z_t, mask, masked latent]
        out_channels=4,
        cross_attention_dim=shape["text"]["hidden_size"] + shape["text_2"]["hidden_size"],
        use_linear_projection=True,
        addition_embed_type="text_time",
        projection_class_embeddings_input_dim=TIME_IDS * shape["unet"]["addition_time_embed_dim"]
        + pooled,
        **shape["unet"],
    )
    torch.manual_seed(seed + 1)
    vae = autoencoder(shape["vae"], scaling_factor=0.13025)  # SDXL's VAE
    scheduler = EulerDiscreteScheduler(
        **SD_NOISE_SCHEDULE, timestep_spacing="leading", interpolation_type="linear"
    )  # SDXL's sampler and schedule
    return {
        "vae": vae,
        "text_encoder": text_encoder,
        "text_encoder_2": text_encoder_2,
        "tokenizer": tokenizer,
        "tokenizer_2": character_tokenizer(),
        "unet": unet,
        "scheduler": scheduler,
    }
