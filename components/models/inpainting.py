"""Load a Stable Diffusion inpainting model's parts, frozen, from a diffusers folder or hub id.

One loader for the paper's checkpoint and the tiny zoo: each part comes from its own class's
`from_pretrained(name, subfolder=...)`, weights from safetensors only (pickles can run code).
Freezing and `eval()` happen here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

import diffusers
from diffusers import AutoencoderKL, DiffusionPipeline, SchedulerMixin, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from components.models.loading import checked_folder, freeze, local_folder


@dataclass(frozen=True)
class InpaintingParts:
    unet: UNet2DConditionModel  # 9 input channels for an inpainting checkpoint, 4 for a plain one
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    scheduler: SchedulerMixin


def load_inpainting(
    name: str, scheduler: str | None = None, trust_remote_code: bool = False
) -> InpaintingParts:
    """Every part of `name`, frozen and in eval mode; `scheduler` swaps in another sampler class.

    `trust_remote_code` is passed to the transformers loaders (diffusers' models take no such flag).
    """
    folder = local_folder(name)
    source = name if folder is None else str(checked_folder(folder))
    parts = InpaintingParts(
        unet=UNet2DConditionModel.from_pretrained(source, subfolder="unet", use_safetensors=True),
        vae=AutoencoderKL.from_pretrained(source, subfolder="vae", use_safetensors=True),
        text_encoder=CLIPTextModel.from_pretrained(
            source,
            subfolder="text_encoder",
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
        ),
        tokenizer=CLIPTokenizer.from_pretrained(
            source, subfolder="tokenizer", trust_remote_code=trust_remote_code
        ),
        scheduler=load_scheduler(source, scheduler),
    )
    for module in (parts.unet, parts.vae, parts.text_encoder):
        freeze(module)
    return parts


def load_scheduler(source: str, name: str | None) -> SchedulerMixin:
    """The saved scheduler, or the compatible diffusers class `name` built from its config."""
    _, saved_class = DiffusionPipeline.load_config(source)["scheduler"]  # model_index.json
    saved = getattr(diffusers, saved_class).from_pretrained(source, subfolder="scheduler")
    if name is None:
        return saved
    compatible = {cls.__name__: cls for cls in saved.compatibles}
    if name not in compatible:
        raise ValueError(
            f"scheduler {name!r} is not a diffusers scheduler compatible with the saved "
            f"{type(saved).__name__}: name one of {', '.join(sorted(compatible))}, "
            "or leave it unset to use the saved one"
        )
    return compatible[name].from_config(saved.config)
