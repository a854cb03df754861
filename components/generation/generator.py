"""The one interface every frozen generator offers the method, `Editor`, evaluation, the
features stage and the benchmarks (DESIGN §5): encode the prompt, encode the source, generate
inside a mask with the per-step blend of Appendix A (Eq. 23) in the model's own noise form, and
decode. Callers never learn which model runs; `components.generation.load_generator` picks the
implementation from the model folder's `model_index.json`.

Latents are always returned on the VAE's spatial grid, (B, c, H/f, W/f), whatever layout the
denoiser works in (FLUX packs 2x2 patches into tokens and unpacks them here), so the
differentiable composition res = M*generated + (1-M)*source is the same for every generator.

No autograd runs through the denoiser: its K steps would cost K backward passes through a
frozen network. The region head's gradient arrives through the composition, so only `decode`
keeps autograd (the VAE's weights stay frozen).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor, nn

MaskedImageLatents = Literal["exact", "approx"]
Attention = Literal["sdpa", "eager"]


@dataclass(frozen=True)
class PromptConditioning:
    """A generator's text conditioning, batch first, by name ("prompt": the token states the
    denoiser attends to; "pooled_prompt": a pooled embedding, for SDXL and FLUX).
    `unconditional` holds the empty prompt's for classifier-free guidance (batch 1 or B), and
    is empty for a generator without it (FLUX.1 Fill's guidance is an embedding)."""

    text: dict[str, Tensor]
    unconditional: dict[str, Tensor]


class Generator(ABC):
    """Repaint the masked region of a batch of images under a prompt with a frozen model."""

    family: str  # what `load_generator` read from the folder: sd, sdxl or flux-fill
    vae: AutoencoderKL

    @property
    @abstractmethod
    def denoiser(self) -> nn.Module:
        """The UNet or transformer the sampler calls K times."""

    @abstractmethod
    def frozen_modules(self) -> dict[str, nn.Module]:
        """Every network, by its diffusers folder name: all frozen and in eval mode."""

    @abstractmethod
    def encode_prompt(self, prompts: list[str]) -> PromptConditioning:
        """The conditioning of each prompt (and the empty prompt's, where guidance needs it)."""

    @abstractmethod
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
        """Final latents for images in [-1,1] and a pixel mask (B,1,H,W), 1 = repaint. With
        `blend`, Eq. 23 resets everything outside the latent mask to the source noised to the
        next step after every step. "approx" masked-image latents are Appendix A's (1-m)*z_src
        (one VAE encode fewer) where the model conditions on the masked image."""

    @property
    def device(self) -> torch.device:
        return self.denoiser.device

    @property
    def dtype(self) -> torch.dtype:
        return self.denoiser.dtype

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def to(self, device: torch.device | str) -> Generator:
        for module in self.frozen_modules().values():
            module.to(device)
        return self

    @torch.no_grad()
    def encode_source(self, images: Tensor) -> Tensor:
        """Images (B,3,H,W) in [-1,1] -> scaled source latents z_src (the distribution's mode)."""
        return self.latents_of(self.vae.encode(self.pixels(images)).latent_dist.mode())

    def decode(self, latents: Tensor) -> Tensor:
        """Latents -> images in [-1,1]; autograd stays on so a loss can reach a blended mask."""
        config = self.vae.config
        shift = config.shift_factor or 0.0
        images = self.vae.decode(latents / config.scaling_factor + shift, return_dict=False)[0]
        return images.clamp(-1, 1)

    def latents_of(self, vae_latents: Tensor) -> Tensor:
        """The VAE's raw latents in the denoiser's scale: (z - shift) * scale."""
        config = self.vae.config
        return (vae_latents - (config.shift_factor or 0.0)) * config.scaling_factor

    def pixels(self, images: Tensor) -> Tensor:
        return images.to(device=self.device, dtype=self.vae.dtype)

    @property
    def latent_channels(self) -> int:
        return self.vae.config.latent_channels

    def latent_grid(self, images: Tensor) -> tuple[int, int]:
        return images.shape[-2] // self.downsample, images.shape[-1] // self.downsample

    def prepared(
        self,
        images: Tensor,
        mask: Tensor,
        blend: bool,
        masked_image_latents: MaskedImageLatents,
        z_src: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """`generate`'s inputs: the images on the VAE's device and dtype, the mask binarised
        as diffusers' mask processor does, and z_src where the blend or the approximate
        masked-image latent needs it."""
        if masked_image_latents not in ("exact", "approx"):
            raise ValueError(f"masked_image_latents={masked_image_latents!r}: use exact or approx")
        images = self.pixels(images)
        mask = (mask.to(images) >= 0.5).to(images)
        if z_src is None and (blend or masked_image_latents == "approx"):
            z_src = self.encode_source(images)
        return images, mask, z_src

    def initial_noise(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """The seeded noise on the latent grid, drawn before the masked-image latent's sample,
        in diffusers' order."""
        return randn_tensor(
            (images.shape[0], self.latent_channels, *self.latent_grid(images)),
            generator=generator,
            device=self.device,
            dtype=self.dtype,
        )

    def masked_image_latent(
        self,
        images: Tensor,
        mask: Tensor,
        m: Tensor,
        z_src: Tensor | None,
        masked_image_latents: MaskedImageLatents,
        generator: torch.Generator,
    ) -> Tensor:
        """The latent of the source with the region blanked: "exact" encodes the pixels zeroed
        inside the mask (sampled from the VAE's distribution, as the pipelines do); "approx" is
        Appendix A's (1-m)*z_src, one VAE encode fewer."""
        if masked_image_latents == "approx":
            return (1 - m) * z_src
        posterior = self.vae.encode(images * (1 - mask)).latent_dist
        return self.latents_of(posterior.sample(generator))

    @staticmethod
    def latent_mask(mask: Tensor, grid: tuple[int, int]) -> Tensor:
        return F.interpolate(mask, size=grid)  # nearest, as diffusers resizes the mask
