"""A tiny, random FLUX.1 Fill pipeline saved as a diffusers folder, and FLUX.1 Fill's shapes.

The folder has the layout of FLUX.1-Fill-dev (transformer/ taking packed [z_t, masked-image
latent, folded mask] tokens with a guidance embedding, vae/ with 16 latent channels and a shift,
text_encoder/ (CLIP, pooled) + tokenizer/, text_encoder_2/ (T5) + tokenizer_2/, and the
flow-matching scheduler with dynamic shifting), so the loader and `FluxFillPipeline` both read
it. The T5 tokenizer is trained here on the zoo's corpus. `PAPER_SHAPE` is FLUX.1 Fill dev's size
(random weights), for the FLOP and speed benchmarks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import (
    FlowMatchEulerDiscreteScheduler,
    FluxFillPipeline,
    FluxTransformer2DModel,
)
from transformers import CLIPTextModel, T5Config, T5EncoderModel

from components.random_models.corpus import corpus
from components.random_models.inpainting import PAPER_SHAPE as SD_PAPER_SHAPE
from components.random_models.inpainting import TINY_SHAPE as SD_TINY_SHAPE
from components.random_models.inpainting import autoencoder, character_tokenizer, clip_text_config
from components.random_models.text import sentencepiece_tokenizer

LATENT_CHANNELS = 16
VAE_FACTOR = 8
# transformer input per token: 2x2 patches of the noisy latent and of the masked-image latent,
# and of the mask folded to VAE_FACTOR**2 channels per latent cell
FILL_CHANNELS = 4 * LATENT_CHANNELS * 2 + 4 * VAE_FACTOR**2
TINY_SHAPE: dict[str, dict[str, Any]] = {
    "transformer": {
        "num_layers": 1,
        "num_single_layers": 1,
        "attention_head_dim": 16,
        "num_attention_heads": 2,
        "axes_dims_rope": (4, 6, 6),
    },
    "vae": SD_TINY_SHAPE.vae,
    "text": SD_TINY_SHAPE.text,
    "t5": {"d_model": 48, "d_kv": 16, "d_ff": 96, "num_layers": 2, "num_heads": 3},
}
PAPER_SHAPE: dict[str, dict[str, Any]] = {  # FLUX.1-Fill-dev, 1024 pixels
    "transformer": {
        "num_layers": 19,
        "num_single_layers": 38,
        "attention_head_dim": 128,
        "num_attention_heads": 24,
        "axes_dims_rope": (16, 56, 56),
    },
    "vae": {**SD_PAPER_SHAPE.vae, "sample_size": 1024},
    "text": SD_PAPER_SHAPE.text,  # CLIP ViT-L/14's text tower
    "t5": {"d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64},  # XXL
}


def build_flux_fill(out: Path, seed: int) -> Path:
    """Write the tiny FLUX.1 Fill pipeline to `out`."""
    FluxFillPipeline(**flux_fill_parts(seed, TINY_SHAPE)).save_pretrained(
        out, safe_serialization=True
    )
    return out


def flux_fill_parts(seed: int, shape: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The pipeline's components of `shape`, seeded (built under `init_empty_weights` by the
    paper-size benchmarks, where the seed is moot)."""
    tokenizer, tokenizer_2 = character_tokenizer(), sentencepiece_tokenizer(corpus(seed))
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(clip_text_config(tokenizer, shape["text"]))
    torch.manual_seed(seed + 3)
    text_encoder_2 = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer_2),
            feed_forward_proj="gated-gelu",  # T5 v1.1's feed-forward, as FLUX's T5-XXL
            pad_token_id=tokenizer_2.pad_token_id,
            eos_token_id=tokenizer_2.eos_token_id,
            decoder_start_token_id=tokenizer_2.pad_token_id,
            **shape["t5"],
        )
    )
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=FILL_CHANNELS,
        out_channels=4 * LATENT_CHANNELS,
        joint_attention_dim=shape["t5"]["d_model"],
        pooled_projection_dim=shape["text"]["hidden_size"],
        guidance_embeds=True,  # FLUX.1 dev models are guidance-distilled
        **shape["transformer"],
    )
    torch.manual_seed(seed + 1)
    vae = autoencoder(  # FLUX's autoencoder
        shape["vae"],
        LATENT_CHANNELS,
        scaling_factor=0.3611,
        shift_factor=0.1159,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )  # FLUX.1's
    return {
        "scheduler": scheduler,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "text_encoder_2": text_encoder_2,
        "tokenizer_2": tokenizer_2,
        "transformer": transformer,
    }
