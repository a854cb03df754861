"""The frozen Stable Diffusion generators of Appendix A (SD 1.5 / SD 2 and SDXL, inpainting or
plain), built on diffusers' own components.

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

SDXL differs only in its conditioning, as `StableDiffusionXLInpaintPipeline` builds it: the
penultimate hidden states of two text encoders side by side, the second one's pooled embedding,
and the added time ids (original size, crop corner, target size); with
`force_zeros_for_empty_prompt` the unconditional states are zeros.

Speed options (`method.attention`, `method.channels_last`, `method.compile_unet`; measured by
benchmarks/train_step.py): PyTorch's fused scaled-dot-product attention, which diffusers 0.42
picks by default, is set explicitly ("eager" is the classic softmax(QK^T)V for comparison);
channels_last memory for the UNet and VAE convolutions; `torch.compile` of the UNet.
"""

from __future__ import annotations

import inspect

import torch
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0
from torch import Tensor, nn

from components.generation.generator import (
    Attention,
    Generator,
    MaskedImageLatents,
    PromptConditioning,
)
from components.models.generators import StableDiffusionParts

_ETA = 0.0  # DDIM's deterministic sampler (diffusers' default); ignored by schedulers without eta
AESTHETIC_SCORES = (6.0, 2.5)  # diffusers' defaults (text, unconditional) for refiner-style ids


class StableDiffusionGenerator(Generator):
    """SD 1.5 / SD 2: one CLIP text encoder's last hidden states."""

    family = "sd"

    def __init__(
        self,
        parts: StableDiffusionParts,
        attention: Attention = "sdpa",
        channels_last: bool = False,
        compile_denoiser: bool = False,
    ) -> None:
        if attention not in ("sdpa", "eager"):
            raise ValueError(f"attention={attention!r}: use sdpa or eager")
        self.parts = parts
        self.vae = parts.vae
        processor = AttnProcessor2_0 if attention == "sdpa" else AttnProcessor
        layout = torch.channels_last if channels_last else torch.contiguous_format
        for module in (parts.unet, parts.vae):
            module.set_attn_processor(processor())
            module.to(memory_format=layout)
        if compile_denoiser:
            parts.unet.compile()  # in place: the module (and its frozen weights) stays the same
        self.conditions_on_mask = parts.unet.config.in_channels != self.latent_channels

    @property
    def denoiser(self) -> nn.Module:
        return self.parts.unet

    def frozen_modules(self) -> dict[str, nn.Module]:
        names = ("unet", "vae", "text_encoder", "text_encoder_2")
        modules = {name: getattr(self.parts, name) for name in names}
        return {name: module for name, module in modules.items() if module is not None}

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str]) -> PromptConditioning:
        return PromptConditioning(
            text={"prompt": self._embed(prompts)},
            unconditional={"prompt": self._embed([""] * len(prompts))},
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
        if not (self.conditions_on_mask or blend):
            raise ValueError("a 4-channel UNet sees no mask: it inpaints only with blend=True")
        images, mask, z_src = self.prepared(images, mask, blend, masked_image_latents, z_src)
        timesteps = self._timesteps(steps)
        noise = self.initial_noise(images, generator)
        m = self.latent_mask(mask, self.latent_grid(images))
        extra = self._mask_channels(images, mask, m, z_src, masked_image_latents, generator)
        added = self._added_conditions(conditioning, images.shape[-2:])
        step_kwargs = self._step_kwargs(generator)
        latents = noise * self.parts.scheduler.init_noise_sigma
        for i, t in enumerate(timesteps):
            noise_pred = self._guided_noise(latents, t, extra, conditioning, added, guidance_scale)
            latents = self.parts.scheduler.step(
                noise_pred, t, latents, **step_kwargs, return_dict=False
            )[0]
            if blend:
                source = self._noised_source(z_src, noise, timesteps, i)
                latents = m * latents + (1 - m) * source  # Eq. 23
        return latents

    def _embed(self, prompts: list[str]) -> Tensor:
        ids = _token_ids(self.parts.tokenizer, prompts).to(self.device)
        return self.parts.text_encoder(ids, return_dict=False)[0].to(self.dtype)

    def _added_conditions(
        self, conditioning: PromptConditioning, size: tuple[int, int]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]] | None:
        """SDXL's added conditions (text, unconditional); SD has none."""
        return None

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
        masked = self.masked_image_latent(images, mask, m, z_src, masked_image_latents, generator)
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
        added: tuple[dict[str, Tensor], dict[str, Tensor]] | None,
        guidance_scale: float,
    ) -> Tensor:
        """One batched UNet call over [unconditional; text] when guidance is on."""
        guided = guidance_scale > 1
        copies = 2 if guided else 1
        model_input = self.parts.scheduler.scale_model_input(latents.repeat(copies, 1, 1, 1), t)
        if extra is not None:
            model_input = torch.cat([model_input, extra.repeat(copies, 1, 1, 1)], dim=1)
        states = conditioning.text["prompt"]
        if guided:
            states = torch.cat([conditioning.unconditional["prompt"], states])
        kwargs = {}
        if added is not None:
            text, unconditional = added
            kwargs["added_cond_kwargs"] = (
                {k: torch.cat([unconditional[k], v]) for k, v in text.items()} if guided else text
            )
        noise_pred = self.parts.unet(
            model_input, t, encoder_hidden_states=states, return_dict=False, **kwargs
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


class StableDiffusionXLGenerator(StableDiffusionGenerator):
    """SDXL: two text encoders, a pooled embedding and the added time ids."""

    family = "sdxl"

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str]) -> PromptConditioning:
        text = self._embed_xl(prompts)
        if self.parts.force_zeros_for_empty_prompt:
            unconditional = {name: torch.zeros_like(value) for name, value in text.items()}
        else:
            unconditional = self._embed_xl([""] * len(prompts))
        return PromptConditioning(text=text, unconditional=unconditional)

    def _embed_xl(self, prompts: list[str]) -> dict[str, Tensor]:
        """Both encoders' penultimate hidden states side by side, and the second one's pooled
        (projected) embedding, as the SDXL pipelines encode a prompt."""
        states, pooled = [], None
        encoders = (
            (self.parts.tokenizer, self.parts.text_encoder),
            (self.parts.tokenizer_2, self.parts.text_encoder_2),
        )
        for tokenizer, encoder in encoders:
            ids = _token_ids(tokenizer, prompts).to(self.device)
            out = encoder(ids, output_hidden_states=True)
            pooled = out[0]  # the last encoder's text_embeds
            states.append(out.hidden_states[-2])
        return {
            "prompt": torch.cat(states, dim=-1).to(self.dtype),
            "pooled_prompt": pooled.to(self.dtype),
        }

    def _added_conditions(
        self, conditioning: PromptConditioning, size: tuple[int, int]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """(text, unconditional) added conditions: the pooled embedding and the time ids
        (original size, crop corner (0, 0), target size, all the generation's size)."""
        height, width = size
        if self.parts.requires_aesthetics_score:
            ids = [[height, width, 0, 0, score] for score in AESTHETIC_SCORES]
        else:
            ids = [[height, width, 0, 0, height, width]] * 2
        batch = conditioning.text["prompt"].shape[0]
        conditions = []
        for pooled, time_ids in zip(
            (conditioning.text, conditioning.unconditional), ids, strict=True
        ):
            conditions.append(
                {
                    "text_embeds": pooled["pooled_prompt"].expand(batch, -1),
                    "time_ids": torch.tensor(
                        [time_ids], dtype=self.dtype, device=self.device
                    ).expand(batch, -1),
                }
            )
        return conditions[0], conditions[1]


def _token_ids(tokenizer, prompts: list[str]) -> Tensor:
    return tokenizer(
        prompts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
