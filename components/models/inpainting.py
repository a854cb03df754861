"""Load a Stable Diffusion inpainting model's parts, frozen, from a diffusers folder or hub id.

One loader for the paper's checkpoint and the tiny zoo: each part comes from its own class's
`from_pretrained(name, subfolder=...)`, weights from safetensors only (pickles can run code).
Freezing and `eval()` happen here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import diffusers
from diffusers import AutoencoderKL, DiffusionPipeline, SchedulerMixin, UNet2DConditionModel
from huggingface_hub.utils import HFValidationError, validate_repo_id
from torch import nn
from transformers import CLIPTextModel, CLIPTokenizer

_WEIGHTED_PARTS = ("unet", "vae", "text_encoder")
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


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
    source = _checked_source(name)
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
        scheduler=_load_scheduler(source, scheduler),
    )
    for module in (parts.unet, parts.vae, parts.text_encoder):
        _freeze(module)
    return parts


def _checked_source(name: str) -> str:
    """A local folder holding safetensors weights, or a hub id; a missing folder gets a hint."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        for part in _WEIGHTED_PARTS:
            files = list((folder / part).glob("*"))
            pickled = [f.name for f in files if f.suffix in _PICKLE_SUFFIXES]
            if pickled and not any(f.suffix == ".safetensors" for f in files):
                raise ValueError(
                    f"inpainting model {folder / part} has only pickled weights ({pickled[0]}); "
                    "they are refused because unpickling can run code: convert them to "
                    "safetensors or use a checkpoint that ships them"
                )
        return str(folder)
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise FileNotFoundError(
            f"inpainting model folder {name} does not exist: run `regionedit zoo` to build the "
            "tiny models there, or set models.inpainting to a diffusers folder or hub id"
        ) from None
    return name


def _load_scheduler(source: str, name: str | None) -> SchedulerMixin:
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


def _freeze(module: nn.Module) -> None:
    module.requires_grad_(False)
    module.eval()
