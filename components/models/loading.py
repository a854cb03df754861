"""One loader per model family: every model by a library id or a local folder.

A name that looks like a path is always a local folder, so a missing folder is reported as
such (with the command that builds it), never as a failed hub download. Weights load only from
safetensors (or, for open_clip, with `weights_only=True`); checkpoint code runs only if asked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import open_clip
import torch
from PIL import Image
from transformers import (
    AutoImageProcessor,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    PreTrainedModel,
    T5EncoderModel,
    ViTModel,
)

from components.errors import InputError

LOCAL_PREFIXES = (".", "/", "~", "models/")
OPEN_CLIP_LOCAL = "local-dir:"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


class ModelLoadError(InputError, RuntimeError):
    """A model folder is missing, holds no weights, or holds only unsafe (pickled) weights."""


def load_clip(
    name: str, pretrained: str | None = None
) -> tuple[open_clip.CLIP, Callable[[Image.Image], torch.Tensor], Callable[..., torch.Tensor]]:
    """open_clip model, its evaluation preprocessing and its tokenizer.

    `name` is an open_clip model name (`ViT-L-14`, with `pretrained` a tag such as `openai`), or a
    folder with open_clip_config.json, written with or without open_clip's `local-dir:` prefix.
    """
    folder = local_folder(name.removeprefix(OPEN_CLIP_LOCAL))
    if folder is not None:
        checked_folder(folder)
        if not (folder / "open_clip_config.json").is_file():
            raise ModelLoadError(f"{folder}: not an open_clip folder (no open_clip_config.json)")
        name, pretrained = f"{OPEN_CLIP_LOCAL}{folder}", None
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=pretrained, weights_only=True
    )
    return model, preprocess, open_clip.get_tokenizer(name)


def load_instruction_encoder(
    name: str, trust_remote_code: bool = False
) -> tuple[Any, T5EncoderModel]:
    """Tokenizer and T5 encoder (`google/flan-t5-base` or a folder)."""
    source, local = _source(name)
    tokenizer = AutoTokenizer.from_pretrained(
        source, trust_remote_code=trust_remote_code, local_files_only=local
    )
    model = T5EncoderModel.from_pretrained(source, use_safetensors=True, local_files_only=local)
    return tokenizer, model


def load_chat_model(
    name: str, trust_remote_code: bool = False, vision: bool = False
) -> tuple[Any, PreTrainedModel]:
    """Processor and image-text-to-text model if `vision`, else tokenizer and causal LM."""
    source, local = _source(name)
    options = {"trust_remote_code": trust_remote_code, "local_files_only": local}
    if vision:
        processor = AutoProcessor.from_pretrained(source, **options)
        model = AutoModelForImageTextToText.from_pretrained(source, use_safetensors=True, **options)
        return processor, model
    tokenizer = AutoTokenizer.from_pretrained(source, **options)
    return tokenizer, AutoModelForCausalLM.from_pretrained(source, use_safetensors=True, **options)


def load_dino(name: str) -> tuple[Any, ViTModel]:
    """Image processor and DINO ViT without a pooler (`facebook/dino-vits16` or a folder)."""
    source, local = _source(name)
    processor = AutoImageProcessor.from_pretrained(source, local_files_only=local)
    model = ViTModel.from_pretrained(
        source, add_pooling_layer=False, use_safetensors=True, local_files_only=local
    )
    return processor, model


def freeze(module: torch.nn.Module) -> torch.nn.Module:
    """No gradients and eval mode: the one way a pretrained part is frozen."""
    module.requires_grad_(False)
    return module.eval()


def local_folder(name: str) -> Path | None:
    """The folder `name` names, or None when it is a library or hub id."""
    if name.startswith(LOCAL_PREFIXES) or Path(name).exists():
        return Path(name).expanduser()
    return None


def checked_folder(folder: Path) -> Path:
    """`folder` if it exists and every folder of weights in it holds safetensors."""
    if not folder.is_dir():
        raise ModelLoadError(
            f"{folder}: no such model folder. The default profile's models are the world's "
            "release, in git (models/world: `git checkout -- models/world` restores it), and "
            "the tiny random ones `regionedit zoo` builds (models/zoo; `dvc repro zoo`); "
            "otherwise point params.yaml's `models:` at an existing folder or an id."
        )
    weights = [p for p in folder.rglob("*") if p.suffix in (*PICKLE_SUFFIXES, ".safetensors")]
    for holder in sorted({path.parent for path in weights}):
        if not any(holder.glob("*.safetensors")):
            pickles = ", ".join(sorted(p.name for p in weights if p.parent == holder))
            raise ModelLoadError(
                f"{holder}: holds only pickled weights ({pickles}); unpickling can run arbitrary "
                "code, so they are not loaded. Use a checkpoint that ships .safetensors, or "
                "convert these once where you trust them (safetensors.torch.save_file)."
            )
    if not weights:
        raise ModelLoadError(f"{folder}: no weights (*.safetensors) in this model folder")
    return folder


def _source(name: str) -> tuple[str, bool]:
    """(what to pass to from_pretrained, whether it is a local folder)."""
    folder = local_folder(name)
    return (name, False) if folder is None else (str(checked_folder(folder)), True)
