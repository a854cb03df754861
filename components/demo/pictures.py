"""What the page draws: P_region as a heat map over the input, with outlines of regions."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageFilter

DISPLAY_SIDE = 384  # pixels the shorter side is enlarged to (nearest), so one-pixel outlines show
HEAT_OPACITY = 0.5
HARD_REGION = (255, 255, 255)  # the hard mask P_region > tau
TRUTH = (0, 230, 0)  # a world scene's ground-truth region, as components.pictures draws it


def heat_map(
    image: Image.Image,
    probability: Image.Image,
    tau: float,
    truth: Image.Image | None = None,
) -> Image.Image:
    """P_region ("L", the image's size) coloured over `image`, the hard mask's outline in white
    and the ground truth's (if given) in green, enlarged to DISPLAY_SIDE."""
    scale = max(1, round(DISPLAY_SIDE / min(image.size)))
    size = (image.width * scale, image.height * scale)
    p = np.asarray(probability.convert("L").resize(size, Image.Resampling.NEAREST)) / 255
    colours = colormaps["inferno"](p)[..., :3] * 255
    base = np.asarray(image.convert("RGB").resize(size, Image.Resampling.NEAREST), np.float32)
    pixels = np.rint(base * (1 - HEAT_OPACITY) + colours * HEAT_OPACITY).astype(np.uint8)
    pixels[_edge(p > tau, scale)] = HARD_REGION
    if truth is not None:
        inside = np.asarray(truth.convert("L").resize(size, Image.Resampling.NEAREST)) >= 128
        pixels[_edge(inside, scale)] = TRUTH
    return Image.fromarray(pixels, "RGB")


def _edge(inside: np.ndarray, scale: int) -> np.ndarray:
    """The inner boundary of a boolean region, about `scale` // 2 pixels thick; the image's
    border counts as outside, so a region touching it is closed there too."""
    reach = max(1, scale // 2)
    padded = np.pad(inside, reach)
    picture = Image.fromarray(padded.astype(np.uint8) * 255, "L")
    eroded = np.asarray(picture.filter(ImageFilter.MinFilter(2 * reach + 1))) > 0
    return inside & ~eroded[reach:-reach, reach:-reach]
