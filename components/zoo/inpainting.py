"""Tiny, random Stable Diffusion pipelines, saved as diffusers folders.

The inpainting one has the layout of a real SD inpainting checkpoint (unet/ with 9 input
channels, vae/, text_encoder/, tokenizer/, scheduler/), so one loader serves both; the
InstructPix2Pix one (8 input channels: [z_t, image latent]) is the evaluation's baseline.
The VAE keeps SD's 8x downsampling so latent and mask grids have the real geometry.
"""

from __future__ import annotations

from pathlib import Path

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


def build_inpainting(out: Path, seed: int, in_channels: int = 9) -> Path:
    """Write the tiny inpainting pipeline to `out` (`in_channels=4`: a non-inpainting UNet)."""
    return _save(StableDiffusionInpaintPipeline, out, seed, in_channels)


def build_instruct_pix2pix(out: Path, seed: int) -> Path:
    """Write a tiny InstructPix2Pix pipeline (the baseline of the evaluation) to `out`."""
    return _save(StableDiffusionInstructPix2PixPipeline, out, seed, in_channels=8)


def _save(pipeline_class: type, out: Path, seed: int, in_channels: int) -> Path:
    pipeline = pipeline_class(
        **_tiny_parts(seed, in_channels),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(out, safe_serialization=True)
    return out


def _tiny_parts(seed: int, in_channels: int) -> dict:
    tokenizer = _character_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=in_channels,  # 9: [z_t, mask, masked latent]; 8: [z_t, image]; 4: z_t
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=8,
        norm_num_groups=16,
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    )
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=TEXT_WIDTH,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )  # SD 1.5's schedule
    return {
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "unet": unet,
        "scheduler": scheduler,
    }


def _character_tokenizer() -> CLIPTokenizer:
    """A CLIP BPE tokenizer with no merges: every byte is a token (with and without </w>)."""
    symbols = sorted(ByteLevel.alphabet())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in symbols + [s + "</w>" for s in symbols]:
        vocab[symbol] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
