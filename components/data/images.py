"""Decode untrusted image bytes into 8-bit RGB, or say exactly why not."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from components.data.records import Reason
from components.errors import InputError

_EXIF_ORIENTATION = 0x0112
_WHITE = (255, 255, 255)


class InputRejected(Exception):
    """Raised inside the decoding path; `prepare` turns it into a Rejection row."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageLimits:
    min_side: int
    max_pixels: int


@dataclass(frozen=True)
class DecodedImage:
    rgb: Image.Image
    keep_source_bytes: bool  # a plain RGB JPEG: storing its bytes loses nothing

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.rgb.tobytes()).hexdigest()


def decode_image(data: bytes, limits: ImageLimits) -> DecodedImage:
    """Open, size-check *before* decoding, decode, apply EXIF rotation, convert to RGB."""
    if not data:
        raise InputRejected(Reason.EMPTY_FILE, "the file has zero bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as err:
            raise InputRejected(Reason.TOO_LARGE, str(err)) from None
        except UnidentifiedImageError:
            raise InputRejected(Reason.NOT_AN_IMAGE, "no image decoder recognises it") from None
        except Exception as err:  # a decoder choking on its own header
            raise InputRejected(Reason.NOT_AN_IMAGE, f"header unreadable: {err}") from None
        width, height = image.size
        if width * height > limits.max_pixels:
            raise InputRejected(
                Reason.TOO_LARGE,
                f"{width}x{height} = {width * height} pixels > prepare.max_pixels "
                f"{limits.max_pixels}; not decoded",
            )
        try:
            image.load()
        except (OSError, EOFError, SyntaxError, ValueError) as err:
            reason = Reason.TRUNCATED if "truncat" in str(err).lower() else Reason.CORRUPT
            raise InputRejected(reason, f"pixel data: {err}") from None
    orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    source_format = image.format
    if orientation != 1:
        image = ImageOps.exif_transpose(image)
    if min(image.size) < limits.min_side:
        raise InputRejected(
            Reason.TOO_SMALL,
            f"{image.width}x{image.height}: shorter side < prepare.min_side {limits.min_side}",
        )
    rgb = to_rgb(image)
    keep = source_format == "JPEG" and image.mode == "RGB" and orientation == 1
    return DecodedImage(rgb=rgb, keep_source_bytes=keep)


def read_image(path: Path, name: str) -> Image.Image:
    """The image file at `path`, decoded, or an InputError that calls it `name` (the option
    that gave it) and says why not."""
    try:
        image = Image.open(path)
        image.load()
    except OSError as err:  # PIL's UnidentifiedImageError is one
        raise InputError(f"{name} {path}: cannot read it as an image ({err})") from None
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB; transparency is composited on white, 16-bit is rescaled."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # PIL's own convert clips 16-bit values at 255; rescale the full range instead.
        pixels = np.asarray(image, dtype=np.float64)
        pixels = np.clip(np.rint(pixels / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(pixels, mode="L").convert("RGB")
    if (mode == "P" and "transparency" in image.info) or mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def decode_caption(raw: str | bytes | None) -> str:
    """Captions must be valid UTF-8 and not blank; internal whitespace is collapsed."""
    if raw is None:
        raise InputRejected(Reason.MISSING_CAPTION, "no caption for this image")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputRejected(Reason.CAPTION_NOT_UTF8, str(err)) from None
    try:
        raw.encode("utf-8")  # text read with surrogateescape keeps invalid bytes as surrogates
    except UnicodeEncodeError:
        raise InputRejected(Reason.CAPTION_NOT_UTF8, "caption bytes are not valid UTF-8") from None
    caption = " ".join(raw.lstrip("\ufeff").split())
    if not caption:
        raise InputRejected(Reason.EMPTY_CAPTION, "caption is empty or whitespace")
    return caption
