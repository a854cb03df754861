"""The baseline in the same harness: diffusers' InstructPix2Pix pipeline, any IP2P checkpoint."""

from __future__ import annotations

import torch
from diffusers import StableDiffusionInstructPix2PixPipeline
from PIL import Image

from components.models.loading import checked_folder, freeze, local_folder


class InstructPix2PixBaseline:
    """Edits an image from the instruction alone (no descriptions, no region)."""

    def __init__(
        self,
        pipeline: StableDiffusionInstructPix2PixPipeline,
        resolution: int,
        steps: int,
        guidance_scale: float,
        image_guidance_scale: float,
    ) -> None:
        self.pipeline = pipeline
        self.resolution, self.steps = resolution, steps
        self.guidance_scale, self.image_guidance_scale = guidance_scale, image_guidance_scale

    @classmethod
    def load(
        cls,
        name: str,
        resolution: int,
        steps: int,
        guidance_scale: float,
        image_guidance_scale: float,
    ) -> InstructPix2PixBaseline:
        """A diffusers IP2P folder or hub id (`timbrooks/instruct-pix2pix`), safetensors only."""
        folder = local_folder(name)
        source = name if folder is None else str(checked_folder(folder))
        pipeline = StableDiffusionInstructPix2PixPipeline.from_pretrained(
            source, use_safetensors=True, safety_checker=None, requires_safety_checker=False
        )
        for module in (pipeline.unet, pipeline.vae, pipeline.text_encoder):
            freeze(module)
        pipeline.set_progress_bar_config(disable=True)
        return cls(pipeline, resolution, steps, guidance_scale, image_guidance_scale)

    @torch.no_grad()
    def edit(self, image: Image.Image, instruction: str, seed: int) -> Image.Image:
        """The edit at `resolution`, resized back to the input's size."""
        side = self.resolution
        edited = self.pipeline(
            instruction,
            image=image.convert("RGB").resize((side, side), Image.Resampling.BICUBIC),
            num_inference_steps=self.steps,
            guidance_scale=self.guidance_scale,
            image_guidance_scale=self.image_guidance_scale,
            generator=torch.Generator(self.pipeline.device).manual_seed(seed),
        ).images[0]
        return edited.resize(image.size, Image.Resampling.BICUBIC)
