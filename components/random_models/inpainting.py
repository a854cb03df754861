"""Tiny, random Stable Diffusion pipelines, saved as diffusers folders.

The inpainting one has the layout of a real SD inpainting checkpoint (unet/ with 9 input
channels, vae/, text_encoder/, tokenizer/, scheduler/), so one loader serves both; the
InstructPix2Pix one (8 input channels: [z_t, image latent]) is the evaluation's baseline.
The VAE keeps SD's 8x downsampling so latent and mask grids have the real geometry.
`PAPER_SHAPE` builds the same pipeline at SD 1.5 inpainting's size (random weights), for the
FLOP and speed benchmarks (benchmarks/train_step.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    StableDiffusionInpaintPipeline,
    StableDiffusionInstructPix2PixPipeline,
    UNet2DConditionModel,
)
from tokenizers.pre_tokenizers import ByteLevel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

TEXT_WIDTH = 32
SD_NOISE_SCHEDULE = {  # SD 1.5's and SDXL's training noise schedule
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
}


@dataclass(frozen=True)
class PipelineShape:
    """Constructor arguments of each part, beside those every shape shares."""

    unet: dict[str, Any]
    vae: dict[str, Any]
    text: dict[str, Any]


TINY_SHAPE = PipelineShape(
    unet={
        "sample_size": 8,
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "cross_attention_dim": TEXT_WIDTH,
        "norm_num_groups": 16,
    },
    vae={
        "block_out_channels": (8, 16, 16, 16),
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "sample_size": 64,
    },
    text={
        "hidden_size": TEXT_WIDTH,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
    },
)
# stable-diffusion-inpainting (SD 1.5): the UNet's defaults are SD's blocks; 512-pixel images.
PAPER_SHAPE = PipelineShape(
    unet={
        "sample_size": 64,
        "block_out_channels": (320, 640, 1280, 1280),
        "layers_per_block": 2,
        "cross_attention_dim": 768,
    },
    vae={"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "sample_size": 512},
    text={  # CLIP ViT-L/14's text tower (its 77 tokens); the vocabulary stays the tokenizer's
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "hidden_act": "quick_gelu",
    },
)


def build_inpainting(
    out: Path, seed: int, in_channels: int = 9, shape: PipelineShape = TINY_SHAPE
) -> Path:
    """Write the tiny inpainting pipeline to `out` (`in_channels=4`: a non-inpainting UNet;
    `shape=PAPER_SHAPE`: SD 1.5 inpainting's size)."""
    return _save(StableDiffusionInpaintPipeline, out, seed, in_channels, shape)


def build_instruct_pix2pix(out: Path, seed: int) -> Path:
    """Write a tiny InstructPix2Pix pipeline (the baseline of the evaluation) to `out`."""
    return _save(StableDiffusionInstructPix2PixPipeline, out, seed, 8, TINY_SHAPE)


def _save(
    pipeline_class: type, out: Path, seed: int, in_channels: int, shape: PipelineShape
) -> Path:
    pipeline = pipeline_class(
        **_parts(seed, in_channels, shape),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(out, safe_serialization=True)
    return out


def _parts(seed: int, in_channels: int, shape: PipelineShape) -> dict:
    tokenizer = character_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        in_channels=in_channels,  # 9: [z_t, mask, masked latent]; 8: [z_t, image]; 4: z_t
        out_channels=4,
        attention_head_dim=8,
        **shape.unet,
    )
    torch.manual_seed(seed + 1)
    vae = autoencoder(shape.vae)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(clip_text_config(tokenizer, shape.text))
    scheduler = DDIMScheduler(**SD_NOISE_SCHEDULE, clip_sample=False, set_alpha_to_one=False)
    return {
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "unet": unet,
        "scheduler": scheduler,
    }


def autoencoder(shape: dict[str, Any], latent_channels: int = 4, **config: Any) -> AutoencoderKL:
    """A VAE with SD's four 2x-downsampling blocks (an 8x latent grid), of `shape`; `config`:
    the family's scaling and shift."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=latent_channels,
        **shape,
        **config,
    )


def clip_text_config(tokenizer: CLIPTokenizer, shape: dict[str, Any]) -> CLIPTextConfig:
    """A CLIP text tower of `shape` over `tokenizer`'s vocabulary and 77 positions."""
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **shape,
    )


def character_tokenizer() -> CLIPTokenizer:
    """A CLIP BPE tokenizer with no merges: every byte is a token (with and without </w>)."""
    symbols = sorted(ByteLevel.alphabet())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in symbols + [s + "</w>" for s in symbols]:
        vocab[symbol] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
