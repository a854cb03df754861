"""The frozen FLUX.1 Fill generator, built on diffusers' own components (`FluxFillPipeline`'s).

FLUX is a flow-matching model: from z_1 = noise it integrates a velocity field to z_0 along
z_sigma = (1 - sigma) z_0 + sigma * noise, with the scheduler's sigmas (linear in K, shifted
by an amount that grows with the image's token count, as the pipeline computes it). Its
transformer sees 2x2 latent patches packed into tokens, with the conditioning of FLUX.1 Fill
packed beside them: the masked image's latent and the pixel mask folded onto the latent grid
(each latent cell carries its f x f pixels as channels). FLUX.1 Fill dev is guidance-distilled:
the guidance scale enters as an embedding and there is one transformer call per step, so there is
no unconditional prompt.

The blend of Eq. 23 in this noise form: after each step, everything outside the latent mask m is
reset to the source at the next sigma, z = m*z + (1-m)*((1 - sigma) z_src + sigma * noise).
Latents go in and out unpacked, on the VAE's grid; only the transformer sees tokens.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import FluxFillPipeline
from diffusers.pipelines.flux.pipeline_flux_fill import calculate_shift
from torch import Tensor, nn

from components.generation.generator import (
    Attention,
    Generator,
    MaskedImageLatents,
    PromptConditioning,
)
from components.models.generators import FluxFillParts

MAX_SEQUENCE_LENGTH = 512  # T5 tokens of the prompt: the pipeline's default


class FluxFillGenerator(Generator):
    family = "flux-fill"

    def __init__(
        self,
        parts: FluxFillParts,
        attention: Attention = "sdpa",
        channels_last: bool = False,
        compile_denoiser: bool = False,
    ) -> None:
        if attention != "sdpa":
            raise ValueError(
                f"attention={attention!r}: FLUX's transformer runs PyTorch's fused attention "
                "only; use sdpa (eager is the UNet generators' comparison)"
            )
        self.parts = parts
        self.vae = parts.vae
        if channels_last:  # the transformer has no convolutions; the VAE has
            parts.vae.to(memory_format=torch.channels_last)
        if compile_denoiser:
            parts.transformer.compile()

    @property
    def denoiser(self) -> nn.Module:
        return self.parts.transformer

    def frozen_modules(self) -> dict[str, nn.Module]:
        names = ("transformer", "vae", "text_encoder", "text_encoder_2")
        return {name: getattr(self.parts, name) for name in names}

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str]) -> PromptConditioning:
        """T5's states (what the transformer attends to) and CLIP's pooled embedding."""
        clip = self.parts.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.parts.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        t5 = self.parts.tokenizer_2(
            prompts,
            padding="max_length",
            max_length=MAX_SEQUENCE_LENGTH,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        pooled = self.parts.text_encoder(clip.to(self.device)).pooler_output
        states = self.parts.text_encoder_2(t5.to(self.device))[0]
        return PromptConditioning(
            text={"prompt": states.to(self.dtype), "pooled_prompt": pooled.to(self.dtype)},
            unconditional={},
        )

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
        batch, grid = images.shape[0], self.latent_grid(images)
        if grid[0] % 2 or grid[1] % 2:
            raise ValueError(
                f"FLUX packs 2x2 latent patches: the image side ({images.shape[-2]}x"
                f"{images.shape[-1]}) must be a multiple of {2 * self.downsample}"
            )
        images, mask, z_src = self.prepared(images, mask, blend, masked_image_latents, z_src)
        sigmas = self._sigmas(steps, grid)
        noise = self.initial_noise(images, generator)
        m = self.latent_mask(mask, grid)
        condition = self._fill_condition(images, mask, m, z_src, masked_image_latents, generator)
        image_ids = FluxFillPipeline._prepare_latent_image_ids(
            batch, grid[0] // 2, grid[1] // 2, self.device, self.dtype
        )
        states = conditioning.text["prompt"]
        text_ids = torch.zeros(states.shape[1], 3, device=self.device, dtype=self.dtype)
        guidance = None
        if self.parts.transformer.config.guidance_embeds:
            guidance = torch.full((batch,), guidance_scale, device=self.device, dtype=torch.float32)
        scheduler, latents = self.parts.scheduler, noise
        for i, t in enumerate(scheduler.timesteps):
            velocity = self.parts.transformer(
                hidden_states=torch.cat([self._pack(latents), condition], dim=2),
                timestep=t.expand(batch).to(latents.dtype) / 1000,
                guidance=guidance,
                pooled_projections=conditioning.text["pooled_prompt"],
                encoder_hidden_states=states,
                txt_ids=text_ids,
                img_ids=image_ids,
                return_dict=False,
            )[0]
            velocity = FluxFillPipeline._unpack_latents(
                velocity, images.shape[-2], images.shape[-1], self.downsample
            )
            latents = scheduler.step(velocity, t, latents, return_dict=False)[0]
            if blend:
                sigma = sigmas[i + 1]  # 0 after the last step: the clean source
                source = (1 - sigma) * z_src + sigma * noise
                latents = m * latents + (1 - m) * source  # Eq. 23
        return latents

    def _sigmas(self, steps: int, grid: tuple[int, int]) -> Tensor:
        """Set the scheduler's K steps as FluxFillPipeline does; the sigmas, ending at 0."""
        scheduler = self.parts.scheduler
        config = scheduler.config
        mu = calculate_shift(
            (grid[0] // 2) * (grid[1] // 2),
            config.get("base_image_seq_len", 256),
            config.get("max_image_seq_len", 4096),
            config.get("base_shift", 0.5),
            config.get("max_shift", 1.15),
        )
        scheduler.set_timesteps(
            sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu, device=self.device
        )
        scheduler.set_begin_index(0)
        return scheduler.sigmas.to(self.device, self.dtype)

    def _fill_condition(
        self,
        images: Tensor,
        mask: Tensor,
        m: Tensor,
        z_src: Tensor | None,
        masked_image_latents: MaskedImageLatents,
        generator: torch.Generator,
    ) -> Tensor:
        """FLUX.1 Fill's packed conditioning tokens: [masked-image latent, folded pixel mask]."""
        masked = self.masked_image_latent(images, mask, m, z_src, masked_image_latents, generator)
        f = self.downsample
        batch, _, height, width = mask.shape
        folded = (  # (B, f*f, H/f, W/f): each latent cell's f x f pixels as channels
            mask[:, 0]
            .view(batch, height // f, f, width // f, f)
            .permute(0, 2, 4, 1, 3)
            .reshape(batch, f * f, height // f, width // f)
        )
        return torch.cat([self._pack(masked.to(self.dtype)), self._pack(folded.to(self.dtype))], 2)

    @staticmethod
    def _pack(latents: Tensor) -> Tensor:
        batch, channels, height, width = latents.shape
        return FluxFillPipeline._pack_latents(latents, batch, channels, height, width)
