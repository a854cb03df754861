"""InstructPix2Pix trained on the world's editing pairs: the pair-trained side of the comparison.

Brooks et al. fine-tune a text-to-image Stable Diffusion on (source, instruction, target)
triples: the UNet gets 4 more input channels for the source image's latent, initialised to
zero, so that it starts as the text-to-image model it came from; the VAE and the text encoder
stay frozen; the loss is the noise-prediction MSE of the target's latent, conditioned on the
instruction and the source latent (its VAE mode, unscaled, as diffusers'
`StableDiffusionInstructPix2PixPipeline` encodes it). Five in a hundred samples drop the
instruction, five the source image and five both, so that both guidance scales work at
inference.

The world has no text-to-image model, only the inpainting one (`components/world/zoo`). Its
UNet with every pixel masked is one: the mask channel at 1 and the masked-image latent of an
empty (mid-grey) picture are constant inputs, so their part of the first convolution is a
constant added to its bias. `instruct_pix2pix_unet` folds that constant in, keeps the noisy
latent's weights and adds the source latent's four channels at zero: the inpainting model's
text-to-image mode, widened as InstructPix2Pix widens SD. Same VAE, same text encoder, same
sampler as the method's generator: the two sides start from the same models.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import (
    AutoencoderKL,
    DDPMScheduler,
    StableDiffusionInstructPix2PixPipeline,
    UNet2DConditionModel,
)
from torch import Tensor
from tqdm import tqdm

from components.models.generators import StableDiffusionParts
from components.training.compute import flop_counter
from components.world.edits import WorldEdit
from components.world.zoo.schedules import warmup_cosine

LATENT = 4  # channels of SD's latent


@dataclass(frozen=True)
class PairTraining:
    """How the pair-trained editor trains (params.yaml: pairs)."""

    epochs: float  # passes over the scale's pairs
    batch: int
    lr: float
    warmup: int  # steps of linear warm-up before the cosine decay
    conditioning_dropout: float  # InstructPix2Pix: 0.05 for each of text, image and both

    def steps_for(self, pairs: int) -> int:
        return max(1, round(self.epochs * pairs / self.batch))


@dataclass(frozen=True)
class PairTrainingResult:
    losses: list[float]  # one per step
    flops_per_sample: float  # of the first step, forward and backward, over its batch
    samples_seen: int
    seconds: float


INITS = ("text-to-image", "inpainting")  # params.yaml: pairs.init


def instruct_pix2pix_pipeline(
    parts: StableDiffusionParts, init: str = "text-to-image"
) -> StableDiffusionInstructPix2PixPipeline:
    """The inpainting pipeline's VAE, text encoder, tokenizer and scheduler around an 8-channel
    UNet started by `instruct_pix2pix_unet`."""
    return StableDiffusionInstructPix2PixPipeline(
        vae=parts.vae,
        text_encoder=parts.text_encoder,
        tokenizer=parts.tokenizer,
        unet=instruct_pix2pix_unet(parts.unet, parts.vae, init),
        scheduler=parts.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def instruct_pix2pix_unet(
    inpainting: UNet2DConditionModel, vae: AutoencoderKL, init: str = "text-to-image"
) -> UNet2DConditionModel:
    """The 9-channel inpainting UNet as an 8-channel InstructPix2Pix UNet: [z_t, source latent].

    `text-to-image` (InstructPix2Pix's recipe): the inpainting model with every pixel masked,
    the source's channels at zero. `inpainting`: the inpainting model with no pixel masked, the
    source latent in the masked-image latent's place (its weights times the VAE's scaling
    factor, since InstructPix2Pix's source latent is unscaled): at the start it reproduces
    the source, and training only has to learn the edit."""
    if inpainting.config.in_channels != 2 * LATENT + 1:
        raise ValueError(
            f"the InstructPix2Pix UNet starts from an inpainting UNet ([z_t, mask, masked "
            f"latent], 9 channels); this one has {inpainting.config.in_channels}"
        )
    if init not in INITS:
        raise ValueError(f"pairs.init {init!r}: expected one of {INITS}")
    unet = UNet2DConditionModel.from_config({**inpainting.config, "in_channels": 2 * LATENT})
    state = dict(inpainting.state_dict())
    weight, bias = state.pop("conv_in.weight"), state.pop("conv_in.bias")
    unet.load_state_dict(state, strict=False)
    side = inpainting.config.sample_size * 2 ** (len(vae.config.block_out_channels) - 1)
    with torch.no_grad():
        unet.conv_in.weight.zero_()
        unet.conv_in.weight[:, :LATENT] = weight[:, :LATENT]
        if init == "inpainting":  # mask 0 adds nothing; the masked latent is the source's
            unet.conv_in.weight[:, LATENT:] = weight[:, LATENT + 1 :] * vae.config.scaling_factor
            unet.conv_in.bias.copy_(bias)
        else:
            unet.conv_in.bias.copy_(bias + _paint_everything(vae, weight[:, LATENT:], side))
    return unet


def _paint_everything(vae: AutoencoderKL, weight: Tensor, side: int) -> Tensor:
    """The first convolution's response, away from the border, to the inpainting condition
    "every pixel masked": mask 1 and the latent of the blanked picture (zeros in [-1, 1])."""
    with torch.no_grad():
        blank = torch.zeros(1, 3, side, side)
        masked = vae.encode(blank).latent_dist.mode() * vae.config.scaling_factor
        condition = torch.cat([torch.ones_like(masked[:, :1]), masked], 1)
        response = F.conv2d(condition, weight, padding=weight.shape[-1] // 2)
    middle = response.shape[-1] // 2
    return response[0, :, middle, middle]


@dataclass(frozen=True)
class EncodedPairs:
    """What the frozen VAE and text encoder make of the pairs, once: the source latents (mode,
    unscaled, as the pipeline encodes its input), the target latents' posterior (scaled), the
    instructions' states, and the empty prompt's."""

    source: Tensor
    target_mean: Tensor
    target_std: Tensor
    instruction: Tensor
    empty: Tensor


def encode_pairs(
    pipeline: StableDiffusionInstructPix2PixPipeline, pairs: Sequence[WorldEdit], side: int
) -> EncodedPairs:
    vae, scale = pipeline.vae, pipeline.vae.config.scaling_factor
    sources, targets, states = [], [], []
    with torch.no_grad():
        for start in range(0, len(pairs), 64):
            chunk = pairs[start : start + 64]
            sources.append(vae.encode(_pixels([e.source_image(side) for e in chunk])).latent_dist)
            targets.append(vae.encode(_pixels([e.target_image(side) for e in chunk])).latent_dist)
            states.append(_text(pipeline, [e.t_ins for e in chunk]))
        empty = _text(pipeline, [""])
    return EncodedPairs(
        torch.cat([d.mode() for d in sources]),
        torch.cat([d.mean for d in targets]) * scale,
        torch.cat([d.std for d in targets]) * scale,
        torch.cat(states),
        empty,
    )


def train_instruct_pix2pix(
    pipeline: StableDiffusionInstructPix2PixPipeline,
    pairs: EncodedPairs,
    training: PairTraining,
    seed: int,
    progress: bool = True,
) -> PairTrainingResult:
    """Train `pipeline.unet` in place on `pairs` for `training.steps_for(len(pairs))` steps."""
    unet, count = pipeline.unet, len(pairs.source)
    steps = training.steps_for(count)
    noise_schedule = DDPMScheduler.from_config(pipeline.scheduler.config)
    optimiser = torch.optim.AdamW(unet.parameters(), lr=training.lr, weight_decay=0.01)
    schedule = warmup_cosine(optimiser, steps, training.warmup)
    sampler = torch.Generator().manual_seed(seed)
    order = _epochs(count, steps * training.batch, seed)
    unet.train().requires_grad_(True)
    losses, flops, started = [], 0.0, time.perf_counter()
    bar = tqdm(range(steps), "instruct-pix2pix", unit="step", disable=not progress, mininterval=10)
    for step in bar:
        index = order[step * training.batch : (step + 1) * training.batch]
        if step == 0:
            with flop_counter() as counter:
                loss = _step(unet, noise_schedule, pairs, index, training, sampler)
            flops = counter.get_total_flops() / len(index)
        else:
            loss = _step(unet, noise_schedule, pairs, index, training, sampler)
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        schedule.step()
        losses.append(loss)
    unet.eval().requires_grad_(False)
    return PairTrainingResult(losses, flops, steps * training.batch, time.perf_counter() - started)


def _step(
    unet: UNet2DConditionModel,
    noise_schedule: DDPMScheduler,
    pairs: EncodedPairs,
    index: Tensor,
    training: PairTraining,
    sampler: torch.Generator,
) -> float:
    """One forward and backward of the InstructPix2Pix objective on the pairs at `index`."""
    mean, std = pairs.target_mean[index], pairs.target_std[index]
    latents = mean + std * torch.randn(mean.shape, generator=sampler)
    noise = torch.randn(latents.shape, generator=sampler)
    t = torch.randint(noise_schedule.config.num_train_timesteps, (len(index),), generator=sampler)
    noisy = noise_schedule.add_noise(latents, noise, t)
    drop_text, drop_image = conditioning_dropout(
        torch.rand(len(index), generator=sampler), training.conditioning_dropout
    )
    states = torch.where(drop_text[:, None, None], pairs.empty, pairs.instruction[index])
    source = pairs.source[index] * ~drop_image[:, None, None, None]
    prediction = unet(torch.cat([noisy, source], 1), t, states, return_dict=False)[0]
    loss = F.mse_loss(prediction, noise)
    loss.backward()
    return loss.item()


def conditioning_dropout(draw: Tensor, share: float) -> tuple[Tensor, Tensor]:
    """Which samples lose the instruction and which the source image, from one uniform draw
    each: [0, share) the instruction, [share, 2 share) both, [2 share, 3 share) the image."""
    return draw < 2 * share, (draw >= share) & (draw < 3 * share)


def _epochs(count: int, samples: int, seed: int) -> Tensor:
    """`samples` pair indices: whole shuffled passes over the `count` pairs, one after another."""
    rng = np.random.default_rng(seed)
    passes = -(-samples // count)
    return torch.from_numpy(np.concatenate([rng.permutation(count) for _ in range(passes)]))


def _pixels(images: list) -> Tensor:
    array = np.stack([np.asarray(image.convert("RGB")) for image in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).float() / 127.5 - 1


def _text(pipeline: StableDiffusionInstructPix2PixPipeline, prompts: list[str]) -> Tensor:
    """The prompts' states as the pipeline's `encode_prompt` makes them (padded to the
    tokenizer's length)."""
    tokenizer = pipeline.tokenizer
    ids = tokenizer(
        prompts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    return pipeline.text_encoder(ids)[0]
