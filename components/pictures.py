"""Pictures people would rather see than read: regions over images, edit grids."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageFilter

from components.method.mask import upsample

_REGION_TINT = np.array([255, 64, 32], dtype=np.float32)
_OUTLINE = np.array([0, 230, 0], dtype=np.uint8)  # the ground truth's edge over a region


def region_grid(
    images: torch.Tensor, mask: torch.Tensor, results: torch.Tensor, rows: int = 4
) -> Image.Image:
    """One row per sample: the image, the region tinted over it, the composed edit.

    images, results (B, 3, H, W) in [0, 1]; mask (B, 1, g, g) in {0, 1}."""
    count = min(rows, images.shape[0])
    region = upsample(mask[:count].detach().float(), images.shape[-2:])
    source, edited = _pixels(images[:count]), _pixels(results[:count])
    alpha = region.permute(0, 2, 3, 1).cpu().numpy() * 0.6
    tinted = source * (1 - alpha) + _REGION_TINT * alpha
    grid = np.concatenate(
        [np.concatenate(row, axis=1) for row in zip(source, tinted, edited, strict=True)], axis=0
    )
    return Image.fromarray(grid.round().astype(np.uint8), "RGB")


def _pixels(images: torch.Tensor) -> np.ndarray:
    return images.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255


def overlay_region(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The region (an "L" mask of the image's size) tinted over the image."""
    alpha = np.asarray(mask.convert("L"), dtype=np.float32)[..., None] / 255 * 0.6
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    tinted = pixels * (1 - alpha) + _REGION_TINT * alpha
    return Image.fromarray(tinted.round().astype(np.uint8), "RGB")


def outline_region(image: Image.Image, mask: Image.Image) -> Image.Image:
    """`image` with the one-pixel boundary of `mask` ("L", white = inside) drawn in green."""
    inside = (
        mask.convert("L")
        .resize(image.size, Image.Resampling.NEAREST)
        .point(lambda v: 255 if v >= 128 else 0)
    )
    eroded = inside.filter(ImageFilter.MinFilter(3))
    boundary = np.asarray(inside) > np.asarray(eroded)
    pixels = np.array(image.convert("RGB"))
    pixels[boundary] = _OUTLINE
    return Image.fromarray(pixels, "RGB")


def comparison_grid(rows: list[list[Image.Image]], height: int = 160) -> Image.Image:
    """Pictures side by side, one row per case (e.g. input | region | ours | baseline),
    each scaled to `height` pixels, on white."""
    scaled = [
        [p.convert("RGB").resize((max(1, round(p.width * height / p.height)), height)) for p in row]
        for row in rows
    ]
    width = max(sum(p.width for p in row) for row in scaled)
    grid = Image.new("RGB", (width, height * len(scaled)), (255, 255, 255))
    for r, row in enumerate(scaled):
        x = 0
        for picture in row:
            grid.paste(picture, (x, r * height))
            x += picture.width
    return grid
