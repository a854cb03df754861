"""The world's generator: a Stable Diffusion inpainting pipeline trained on world scenes.

Built from diffusers' own parts and saved in the layout `StableDiffusionInpaintPipeline`
loads (vae/, unet/ with 9 input channels, text_encoder/, tokenizer/, scheduler/), so the
project's one inpainting loader reads it as it reads SD 1.5 inpainting. Trained as SD
inpainting models are, in two steps:

1. the VAE, for reconstruction (4x downsampling: 64-pixel scenes give 16x16 latents), its
   `scaling_factor` then set to one over the latents' standard deviation, as SD's 0.18215 was;
2. the 9-channel UNet on the noise-prediction objective (Min-SNR-5 weighted, as diffusers'
   training examples offer), given [z_t, mask, masked-image latent] and the scene's caption.
   The text encoder is a trained CLIP's text tower, frozen, as SD 1.5's is OpenAI CLIP
   ViT-L/14's: the world's method CLIP, whose text tower already binds colours and shapes
   to places (its swapped-caption check), copied into transformers' `CLIPTextModel`. A text
   encoder trained from scratch by the noise loss alone never learned that binding (release
   v1: recolouring in the ground-truth region succeeded in 0 of 16 held-out edits). Masks
   are one object's pixels (as they are, or dilated), one object's box, or a random box, so
   the model learns to paint inside a hole what the caption says is there and the unmasked
   context lacks; one prompt in ten is empty, for classifier-free guidance.

The tokenizer is OpenAI CLIP's BPE (the one SD's tokenizer/ holds), written here from the copy
open_clip ships.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DDPMScheduler,
    StableDiffusionInpaintPipeline,
    UNet2DConditionModel,
)
from scipy.ndimage import binary_dilation
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from components.world.zoo.resumable import ONE_PROCESS, RunSettings, TrainingState
from components.world.zoo.scenes import ScenePool
from components.world.zoo.schedules import warmup_cosine

CONTEXT = 40  # tokens; the longest world caption has 32
EMPTY_PROMPT = 0.1  # share of captions dropped in training, for classifier-free guidance
DILATION = 2  # pixels around an object's mask or box
INITIAL_LOGVAR = -10.0


@dataclass(frozen=True)
class InpaintingTraining:
    vae_steps: int
    unet_steps: int
    batch: int = 32
    vae_batch: int = 8  # whole scenes: GroupNorm's statistics of a crop are not a scene's
    vae_lr: float = 2e-3
    unet_lr: float = 1e-3
    warmup: int = 50  # steps of linear warm-up before the cosine decay (schedules.py)
    snr_gamma: float = 5.0  # Min-SNR loss weighting (Hang et al., 2023), as diffusers' examples


def train_inpainting(
    out: Path,
    pool: ScenePool,
    training: InpaintingTraining,
    seed: int,
    text_tower: open_clip.CLIP,
    run: RunSettings = ONE_PROCESS,
    check: Callable[[StableDiffusionInpaintPipeline], float] | None = None,
) -> tuple[Path, TrainingState]:
    """Train the VAE, then the UNet under `text_tower`'s frozen text encoder, on `pool`; save
    the pipeline to `out`. `check` scores the pipeline at `run.curve_points` steps of the
    UNet's training (the curve is in the returned state)."""
    side = pool.pixels.shape[1]
    vae, vae_state = _train_vae(pool, training, seed, run)
    tokenizer = clip_tokenizer()
    text_encoder = text_encoder_from_clip(text_tower, tokenizer)
    torch.manual_seed(seed + 1)
    unet = UNet2DConditionModel(
        sample_size=side // 4,
        in_channels=9,  # [z_t, mask, masked-image latent]
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=text_encoder.config.hidden_size,
        attention_head_dim=4,
        norm_num_groups=16,
    )
    noise_schedule = DDPMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False
    )  # SD 1.5's schedule
    parts = _UnetParts(unet, text_encoder, tokenizer, vae, noise_schedule)
    state = _train_unet(parts, pool, training, seed, run, check)
    parts.pipeline().save_pretrained(out, safe_serialization=True)
    state.wall_s += vae_state.wall_s  # the pipeline's wall time: its VAE's and its UNet's
    return out, state


@dataclass
class _UnetParts:
    unet: UNet2DConditionModel
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    vae: AutoencoderKL
    noise_schedule: DDPMScheduler

    def pipeline(self) -> StableDiffusionInpaintPipeline:
        """The parts as SD 1.5 inpainting is shipped (in eval mode), with a DDIM sampler."""
        return StableDiffusionInpaintPipeline(
            vae=self.vae.eval(),
            text_encoder=self.text_encoder.eval(),
            tokenizer=self.tokenizer,
            unet=self.unet.eval(),
            scheduler=DDIMScheduler.from_config(
                self.noise_schedule.config, set_alpha_to_one=False, steps_offset=1
            ),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )


def text_encoder_from_clip(clip: open_clip.CLIP, tokenizer: CLIPTokenizer) -> CLIPTextModel:
    """`clip`'s text tower as transformers' `CLIPTextModel` (frozen, in eval mode): the same
    causal transformer, its fused q/k/v projection split in three; its last hidden state is
    open_clip's `ln_final(transformer(tokens))`."""
    blocks = clip.transformer.resblocks
    width = clip.token_embedding.embedding_dim
    config = CLIPTextConfig(
        vocab_size=clip.vocab_size,
        hidden_size=width,
        intermediate_size=blocks[0].mlp.c_fc.out_features,
        num_hidden_layers=len(blocks),
        num_attention_heads=blocks[0].attn.num_heads,
        max_position_embeddings=clip.context_length,
        hidden_act="gelu",  # open_clip's text towers use exact GELU unless `quick_gelu`
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if not isinstance(blocks[0].mlp.gelu, torch.nn.GELU):
        raise ValueError(f"text tower activation {blocks[0].mlp.gelu!r}: expected nn.GELU")
    state = {
        "embeddings.token_embedding.weight": clip.token_embedding.weight,
        "embeddings.position_embedding.weight": clip.positional_embedding,
        "final_layer_norm.weight": clip.ln_final.weight,
        "final_layer_norm.bias": clip.ln_final.bias,
    }
    for i, block in enumerate(blocks):
        layer = f"encoder.layers.{i}"
        for name, weight, bias in zip(
            ("q_proj", "k_proj", "v_proj"),
            block.attn.in_proj_weight.chunk(3),
            block.attn.in_proj_bias.chunk(3),
            strict=True,
        ):
            state[f"{layer}.self_attn.{name}.weight"] = weight
            state[f"{layer}.self_attn.{name}.bias"] = bias
        for ours, theirs in (
            ("self_attn.out_proj", block.attn.out_proj),
            ("layer_norm1", block.ln_1),
            ("layer_norm2", block.ln_2),
            ("mlp.fc1", block.mlp.c_fc),
            ("mlp.fc2", block.mlp.c_proj),
        ):
            state[f"{layer}.{ours}.weight"] = theirs.weight
            state[f"{layer}.{ours}.bias"] = theirs.bias
    encoder = CLIPTextModel(config)
    missing, unexpected = encoder.load_state_dict(
        {k: v.detach().clone().float() for k, v in state.items()}, strict=False
    )
    if missing or unexpected:
        raise ValueError(f"text tower copy: missing {missing}, unexpected {unexpected}")
    return encoder.eval().requires_grad_(False)


def clip_tokenizer(context: int = CONTEXT) -> CLIPTokenizer:
    """OpenAI CLIP's tokenizer (49,408 tokens), from the BPE merges open_clip ships."""
    with gzip.open(open_clip.tokenizer.default_bpe(), "rt", encoding="utf-8") as handle:
        merges = handle.read().split("\n")[1 : 49152 - 256 - 2 + 1]
    alphabet = list(open_clip.tokenizer.bytes_to_unicode().values())
    vocab = alphabet + [v + "</w>" for v in alphabet] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(
        vocab={token: i for i, token in enumerate(vocab)},
        merges=[tuple(m.split()) for m in merges],
        model_max_length=context,
        pad_token="<|endoftext|>",
    )


def _train_vae(
    pool: ScenePool, training: InpaintingTraining, seed: int, run: RunSettings
) -> tuple[AutoencoderKL, TrainingState]:
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,  # two downsamplings: 4x
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        mid_block_add_attention=False,
        sample_size=pool.pixels.shape[1],
    )
    with torch.no_grad():  # start the posterior's log-variance near exp(-10): sampled latents
        channels = vae.config.latent_channels  # are then the means, and reconstruction learns
        vae.quant_conv.weight[channels:] = 0  # at once; the KL term may widen it later
        vae.quant_conv.bias[channels:] = INITIAL_LOGVAR
    optimiser = torch.optim.AdamW(vae.parameters(), lr=training.vae_lr)
    schedule = warmup_cosine(optimiser, training.vae_steps, training.warmup)
    sampler = torch.Generator().manual_seed(seed)
    state = run.state(
        "vae",
        {"training": training, "seed": seed, "side": pool.pixels.shape[1]},
        {"vae": vae, "optimiser": optimiser, "schedule": schedule},
        {"sampler": sampler},
        {},
    )
    start = state.restore()
    for step in run.steps("vae", start, training.vae_steps):
        x = pool.images(torch.randint(len(pool), (training.vae_batch,), generator=sampler))
        x = x * 2 - 1
        posterior = vae.encode(x).latent_dist
        reconstruction = vae.decode(posterior.sample(sampler)).sample
        loss = F.mse_loss(reconstruction, x) + 1e-6 * posterior.kl().mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        state.tick(step + 1, last=step + 1 == training.vae_steps)
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        index = torch.arange(min(len(pool), 512))
        latents = vae.encode(pool.images(index) * 2 - 1).latent_dist.mode()
    vae.register_to_config(scaling_factor=float(1 / latents.std()))
    return vae, state.stop()


def _train_unet(
    parts: _UnetParts,
    pool: ScenePool,
    training: InpaintingTraining,
    seed: int,
    run: RunSettings,
    check: Callable[[StableDiffusionInpaintPipeline], float] | None,
) -> TrainingState:
    unet, text_encoder, tokenizer, vae = parts.unet, parts.text_encoder, parts.tokenizer, parts.vae
    noise_schedule = parts.noise_schedule
    parameters = list(unet.parameters())
    optimiser = torch.optim.AdamW(parameters, lr=training.unet_lr, weight_decay=0.01)
    schedule = warmup_cosine(optimiser, training.unet_steps, training.warmup)
    snr = noise_schedule.alphas_cumprod / (1 - noise_schedule.alphas_cumprod)
    sampler, rng = (
        torch.Generator().manual_seed(seed),
        random.Random(f"regionedit-world-masks:{seed}"),
    )
    scale = vae.config.scaling_factor
    state = run.state(
        "unet",
        {"training": training, "seed": seed, "side": pool.pixels.shape[1]},
        {"unet": unet, "optimiser": optimiser, "schedule": schedule},
        {"sampler": sampler},
        {"masks": rng},
    )
    start = state.restore()
    unet.train()
    for step in run.steps("inpainting", start, training.unet_steps):
        index = torch.randint(len(pool), (training.batch,), generator=sampler)
        x = pool.images(index) * 2 - 1
        mask = torch.from_numpy(np.stack([_training_mask(pool, i, rng) for i in index.tolist()]))
        mask = mask[:, None].float()
        with torch.no_grad():
            z = vae.encode(x).latent_dist.sample(sampler) * scale
            masked = vae.encode(x * (mask < 0.5)).latent_dist.sample(sampler) * scale
        m = F.interpolate(mask, size=z.shape[-2:])
        noise = torch.randn(z.shape, generator=sampler)
        t = torch.randint(noise_schedule.config.num_train_timesteps, (len(z),), generator=sampler)
        captions = ["" if rng.random() < EMPTY_PROMPT else c for c in pool.captions(index)]
        ids = tokenizer(
            captions, padding="max_length", max_length=CONTEXT, truncation=True, return_tensors="pt"
        ).input_ids
        with torch.no_grad():
            states = text_encoder(ids, return_dict=False)[0]
        z_t = noise_schedule.add_noise(z, noise, t)
        prediction = unet(torch.cat([z_t, m, masked], 1), t, states, return_dict=False)[0]
        # Min-SNR-γ for noise prediction: min(SNR_t, γ) / SNR_t per sample
        weight = snr[t].clamp(max=training.snr_gamma) / snr[t]
        loss = (F.mse_loss(prediction, noise, reduction="none").mean((1, 2, 3)) * weight).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimiser.step()
        schedule.step()
        if check is not None and run.on_curve(step + 1, training.unet_steps):
            state.curve.append(
                {
                    "step": step + 1,
                    "check": check(parts.pipeline()),
                    "wall_s": round(state.elapsed(), 1),
                }
            )
            unet.train()
        state.tick(step + 1, last=step + 1 == training.unet_steps)
    return state.stop()


def _training_mask(pool: ScenePool, index: int, rng: random.Random) -> np.ndarray:
    """One object's pixels (as they are, or dilated), one object's box, or a random box
    (side x side, bool)."""
    side = pool.pixels.shape[1]
    objects = [k for k in range(len(pool.scenes[index].objects))]
    kind = rng.random()
    mask = np.zeros((side, side), bool)
    if kind < 0.7:
        pixels = pool.masks[index, rng.choice(objects)]
        if kind < 0.2:
            return pixels.copy()
        if kind < 0.4:
            return binary_dilation(pixels, iterations=DILATION)
        ys, xs = np.nonzero(pixels)
        top, left = max(ys.min() - DILATION, 0), max(xs.min() - DILATION, 0)
        mask[top : ys.max() + DILATION + 1, left : xs.max() + DILATION + 1] = True
        return mask
    height, width = rng.randint(side // 6, side // 2), rng.randint(side // 6, side // 2)
    top, left = rng.randint(0, side - height), rng.randint(0, side - width)
    mask[top : top + height, left : left + width] = True
    return mask
