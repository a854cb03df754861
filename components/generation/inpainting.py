"""The frozen SD inpainting generator of Appendix A, built on diffusers' own components.

The source image X is encoded once to z_src (the latent distribution's mode, so callers may
cache it). Denoising starts from seeded noise; each step feeds a 9-channel inpainting UNet
[z_t, m, masked-image latent], applies classifier-free guidance, and takes one scheduler step.
With `blend`, Eq. 23 then resets everything outside the latent mask m to the source noised to
the next timestep, z_{t-1} = m*z_model + (1-m)*noised(z_src), so only the region is repainted;
that alone makes a plain 4-channel UNet inpaint, as diffusers does for such models.

Masked-image latent: "exact" encodes the source with its pixels zeroed inside the mask, which is
what SD inpainting checkpoints were trained on and what diffusers feeds them (sampled from the
VAE's distribution with the caller's generator, after the initial noise, as diffusers draws it).
"approx" is Appendix A's (1-m)*z_src: one VAE encode fewer per sample, an input the UNet never
saw in training.

No autograd runs through the UNet: its K steps would cost K backward passes through a frozen
network. The region head's gradient arrives instead through the differentiable composition
res = M*generated + (1-M)*source, so only `decode` keeps autograd (the VAE's weights stay frozen).

Speed options (`method.attention`, `method.channels_last`, `method.compile_unet`; measured by
benchmarks/train_step.py): PyTorch's fused scaled-dot-product attention, which diffusers 0.42
picks by default, is set explicitly ("eager" is the classic softmax(QK^T)V for comparison);
channels_last memory for the UNet and VAE convolutions; `torch.compile` of the UNet.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor

from components.models.inpainting import InpaintingParts

MaskedImageLatents = Literal["exact", "approx"]
Attention = Literal["sdpa", "eager"]
_ETA = 0.0  # DDIM's deterministic sampler (diffusers' default); ignored by schedulers without eta


@dataclass(frozen=True)
class PromptConditioning:
    text: Tensor  # (B, L, D) text-encoder states of the prompts
    unconditional: Tensor  # (B, L, D) states of the empty prompt, for classifier-free guidance


class InpaintingGenerator:
    """Repaint the masked region of a batch of images under a prompt with a frozen SD model."""

    def __init__(
        self,
        parts: InpaintingParts,
        attention: Attention = "sdpa",
        channels_last: bool = False,
        compile_unet: bool = False,
    ) -> None:
        if attention not in ("sdpa", "eager"):
            raise ValueError(f"attention={attention!r}: use sdpa or eager")
        self.parts = parts
        processor = AttnProcessor2_0 if attention == "sdpa" else AttnProcessor
        layout = torch.channels_last if channels_last else torch.contiguous_format
        for module in (parts.unet, parts.vae):
            module.set_attn_processor(processor())
            module.to(memory_format=layout)
        if compile_unet:
            parts.unet.compile()  # in place: the module (and its frozen weights) stays the same
        self.latent_scale = parts.vae.config.scaling_factor
        self.downsample = 2 ** (len(parts.vae.config.block_out_channels) - 1)
        self.latent_channels = parts.vae.config.latent_channels
        self.conditions_on_mask = parts.unet.config.in_channels != self.latent_channels

    @property
    def device(self) -> torch.device:
        return self.parts.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.parts.unet.dtype

    def to(self, device: torch.device | str) -> InpaintingGenerator:
        for module in (self.parts.unet, self.parts.vae, self.parts.text_encoder):
            module.to(device)
        return self

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str]) -> PromptConditioning:
        return PromptConditioning(
            text=self._embed(prompts), unconditional=self._embed([""] * len(prompts))
        )

    @torch.no_grad()
    def encode_source(self, images: Tensor) -> Tensor:
        """Images (B,3,H,W) in [-1,1] -> scaled source latents z_src (the distribution's mode)."""
        posterior = self.parts.vae.encode(self._pixels(images)).latent_dist
        return posterior.mode() * self.latent_scale

    @torch.no_grad()
    def generate(
        self,
        images: Tensor,
        mask: Tensor,
        conditioning: PromptConditioning,
        generator: torch.Generator,
        steps: int,
        guidance_scale: float,
        blend: bool = True,
        masked_image_latents: MaskedImageLatents = "exact",
        z_src: Tensor | None = None,
    ) -> Tensor:
        """Final latents for images in [-1,1] and a pixel mask (B,1,H,W), 1 = repaint."""
        if masked_image_latents not in ("exact", "approx"):
            raise ValueError(f"masked_image_latents={masked_image_latents!r}: use exact or approx")
        if not (self.conditions_on_mask or blend):
            raise ValueError("a 4-channel UNet sees no mask: it inpaints only with blend=True")
        images = self._pixels(images)
        mask = (mask.to(images) >= 0.5).to(images)  # binarised as diffusers' mask processor does
        if z_src is None and (blend or masked_image_latents == "approx"):
            z_src = self.encode_source(images)
        timesteps = self._timesteps(steps)
        latent_grid = (images.shape[-2] // self.downsample, images.shape[-1] // self.downsample)
        noise = randn_tensor(
            (images.shape[0], self.latent_channels, *latent_grid),
            generator=generator,
            device=self.device,
            dtype=self.dtype,
        )  # drawn before the masked-image latent's sample, in diffusers' order
        m = F.interpolate(mask, size=latent_grid)  # nearest, as diffusers resizes the mask
        extra = self._mask_channels(images, mask, m, z_src, masked_image_latents, generator)
        step_kwargs = self._step_kwargs(generator)
        latents = noise * self.parts.scheduler.init_noise_sigma
        for i, t in enumerate(timesteps):
            noise_pred = self._guided_noise(latents, t, extra, conditioning, guidance_scale)
            latents = self.parts.scheduler.step(
                noise_pred, t, latents, **step_kwargs, return_dict=False
            )[0]
            if blend:
                source = self._noised_source(z_src, noise, timesteps, i)
                latents = m * latents + (1 - m) * source  # Eq. 23
        return latents

    def decode(self, latents: Tensor) -> Tensor:
        """Latents -> images in [-1,1]; autograd stays on so a loss can reach a blended mask."""
        images = self.parts.vae.decode(latents / self.latent_scale, return_dict=False)[0]
        return images.clamp(-1, 1)

    def _embed(self, prompts: list[str]) -> Tensor:
        tokenizer = self.parts.tokenizer
        ids = tokenizer(
            prompts,
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        return self.parts.text_encoder(ids.to(self.device), return_dict=False)[0].to(self.dtype)

    def _pixels(self, images: Tensor) -> Tensor:
        return images.to(device=self.device, dtype=self.parts.vae.dtype)

    def _timesteps(self, steps: int) -> Tensor:
        scheduler = self.parts.scheduler
        scheduler.set_timesteps(steps, device=self.device)
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(0)  # full denoising: add_noise indexes sigmas from step 0
        return scheduler.timesteps

    def _mask_channels(
        self,
        images: Tensor,
        mask: Tensor,
        m: Tensor,
        z_src: Tensor | None,
        masked_image_latents: MaskedImageLatents,
        generator: torch.Generator,
    ) -> Tensor | None:
        """The UNet's extra input [m, masked-image latent], or None for a 4-channel UNet."""
        if not self.conditions_on_mask:
            return None
        if masked_image_latents == "approx":
            masked = (1 - m) * z_src  # Appendix A's approximation
        else:
            posterior = self.parts.vae.encode(images * (mask < 0.5)).latent_dist
            masked = posterior.sample(generator) * self.latent_scale
        return torch.cat([m, masked.to(self.dtype)], dim=1)

    def _step_kwargs(self, generator: torch.Generator) -> dict[str, object]:
        accepted = inspect.signature(self.parts.scheduler.step).parameters
        offered = {"eta": _ETA, "generator": generator}
        return {key: value for key, value in offered.items() if key in accepted}

    def _guided_noise(
        self,
        latents: Tensor,
        t: Tensor,
        extra: Tensor | None,
        conditioning: PromptConditioning,
        guidance_scale: float,
    ) -> Tensor:
        """One batched UNet call over [unconditional; text] when guidance is on."""
        guided = guidance_scale > 1
        copies = 2 if guided else 1
        model_input = self.parts.scheduler.scale_model_input(latents.repeat(copies, 1, 1, 1), t)
        if extra is not None:
            model_input = torch.cat([model_input, extra.repeat(copies, 1, 1, 1)], dim=1)
        states = conditioning.text
        if guided:
            states = torch.cat([conditioning.unconditional, conditioning.text])
        noise_pred = self.parts.unet(
            model_input, t, encoder_hidden_states=states, return_dict=False
        )[0]
        if not guided:
            return noise_pred
        unconditional, text = noise_pred.chunk(2)
        return unconditional + guidance_scale * (text - unconditional)  # classifier-free guidance

    def _noised_source(self, z_src: Tensor, noise: Tensor, timesteps: Tensor, i: int) -> Tensor:
        """z_src noised with the initial noise to the next timestep; clean after the last step."""
        if i + 1 == len(timesteps):
            return z_src
        return self.parts.scheduler.add_noise(z_src, noise, timesteps[i + 1 : i + 2])
