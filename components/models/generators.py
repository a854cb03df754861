"""Load a generator's parts, frozen, from a diffusers folder or hub id.

Which generator a folder holds is what diffusers itself records: the pipeline class in its
`model_index.json`. SD 1.5 / SD 2 (inpainting or plain) and SDXL (inpainting or plain) share
`StableDiffusionParts` (SDXL adds the second text encoder); FLUX.1 Fill has `FluxFillParts`.
Each part comes from its own class's `from_pretrained(name, subfolder=...)`, weights from
safetensors only (pickles can run code). Freezing and `eval()` happen here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import diffusers
from diffusers import (
    AutoencoderKL,
    DiffusionPipeline,
    FluxTransformer2DModel,
    SchedulerMixin,
    UNet2DConditionModel,
)
from transformers import (
    AutoTokenizer,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    T5EncoderModel,
)

from components.errors import InputError
from components.models.loading import checked_folder, freeze, local_folder

# the pipeline class a folder's model_index.json names -> the generator family that runs it
FAMILIES = {
    "StableDiffusionInpaintPipeline": "sd",
    "StableDiffusionPipeline": "sd",
    "StableDiffusionXLInpaintPipeline": "sdxl",
    "StableDiffusionXLPipeline": "sdxl",
    "FluxFillPipeline": "flux-fill",
}


@dataclass(frozen=True)
class StableDiffusionParts:
    unet: UNet2DConditionModel  # 9 input channels for an inpainting checkpoint, 4 for a plain one
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    scheduler: SchedulerMixin
    text_encoder_2: CLIPTextModelWithProjection | None = None  # SDXL's second (pooled) encoder
    tokenizer_2: CLIPTokenizer | None = None
    force_zeros_for_empty_prompt: bool = False  # SDXL: the unconditional states are zeros
    requires_aesthetics_score: bool = False  # SDXL refiner-style time ids


@dataclass(frozen=True)
class FluxFillParts:
    transformer: FluxTransformer2DModel  # in_channels: packed [z_t, masked-image latent, mask]
    vae: AutoencoderKL
    text_encoder: CLIPTextModel  # pooled prompt
    tokenizer: CLIPTokenizer
    text_encoder_2: T5EncoderModel  # prompt states
    tokenizer_2: object  # a T5 tokenizer
    scheduler: SchedulerMixin  # flow matching (FlowMatchEulerDiscreteScheduler)


GeneratorParts = StableDiffusionParts | FluxFillParts


class UnknownGeneratorError(InputError):
    """A folder whose pipeline class no generator implements."""


def generator_family(name: str) -> str:
    """The generator family of a diffusers folder or hub id (sd, sdxl or flux-fill)."""
    folder = local_folder(name)
    return _family(name if folder is None else str(checked_folder(folder)))[0]


def _family(source: str) -> tuple[str, dict]:
    """(family, model_index.json) of a diffusers folder or hub id."""
    index = DiffusionPipeline.load_config(source)
    family = FAMILIES.get(index.get("_class_name"))
    if family is None:
        raise UnknownGeneratorError(
            f"{source}: model_index.json names pipeline {index.get('_class_name')!r}, which no "
            f"generator here runs; use a folder of one of {', '.join(FAMILIES)} "
            "(README, Generators)"
        )
    return family, index


def load_generator_parts(
    name: str, scheduler: str | None = None, trust_remote_code: bool = False
) -> tuple[str, GeneratorParts]:
    """(family, every part of `name` frozen and in eval mode); `scheduler` swaps in another
    sampler class. `trust_remote_code` is passed to the transformers loaders."""
    folder = local_folder(name)
    source = name if folder is None else str(checked_folder(folder))
    family, index = _family(source)
    text = {"use_safetensors": True, "trust_remote_code": trust_remote_code}
    tokenizer = {"trust_remote_code": trust_remote_code}
    vae = AutoencoderKL.from_pretrained(source, subfolder="vae", use_safetensors=True)
    if family == "flux-fill":
        parts: GeneratorParts = FluxFillParts(
            transformer=FluxTransformer2DModel.from_pretrained(
                source, subfolder="transformer", use_safetensors=True
            ),
            vae=vae,
            text_encoder=CLIPTextModel.from_pretrained(source, subfolder="text_encoder", **text),
            tokenizer=CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", **tokenizer),
            text_encoder_2=T5EncoderModel.from_pretrained(
                source, subfolder="text_encoder_2", **text
            ),
            tokenizer_2=AutoTokenizer.from_pretrained(source, subfolder="tokenizer_2", **tokenizer),
            scheduler=load_scheduler(source, scheduler),
        )
    else:
        xl = family == "sdxl"
        parts = StableDiffusionParts(
            unet=UNet2DConditionModel.from_pretrained(
                source, subfolder="unet", use_safetensors=True
            ),
            vae=vae,
            text_encoder=CLIPTextModel.from_pretrained(source, subfolder="text_encoder", **text),
            tokenizer=CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", **tokenizer),
            scheduler=load_scheduler(source, scheduler),
            text_encoder_2=CLIPTextModelWithProjection.from_pretrained(
                source, subfolder="text_encoder_2", **text
            )
            if xl
            else None,
            tokenizer_2=CLIPTokenizer.from_pretrained(source, subfolder="tokenizer_2", **tokenizer)
            if xl
            else None,
            # diffusers' SDXL pipelines default to True, SD's have no such setting
            force_zeros_for_empty_prompt=xl and index.get("force_zeros_for_empty_prompt", True),
            requires_aesthetics_score=xl and index.get("requires_aesthetics_score", False),
        )
    return family, frozen(parts)


def frozen(parts: GeneratorParts) -> GeneratorParts:
    """`parts` with every network frozen and in eval mode."""
    for field in fields(parts):
        value = getattr(parts, field.name)
        if hasattr(value, "requires_grad_"):
            freeze(value)
    return parts


def load_scheduler(source: str, name: str | None) -> SchedulerMixin:
    """The saved scheduler, or the compatible diffusers class `name` built from its config."""
    _, saved_class = DiffusionPipeline.load_config(source)["scheduler"]  # model_index.json
    saved = getattr(diffusers, saved_class).from_pretrained(source, subfolder="scheduler")
    return swapped_scheduler(saved, name)


def swapped_scheduler(saved: SchedulerMixin, name: str | None) -> SchedulerMixin:
    """`saved` itself (None), or the compatible diffusers class `name` built from its config."""
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
