"""res = M * generated + (1 - M) * source: the differentiable path from the CLIP losses to M.

The generator runs without autograd, so this composition is the only route by which a
gradient reaches P_region (through the straight-through mask M). In pixel space the decoded
generation is a constant; in latent space the blend is decoded by the frozen VAE, whose
backward then carries the gradient (DESIGN §4; `method.composition`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor

from components.method.mask import upsample


def compose_in_pixels(mask: Tensor, generated: Tensor, source: Tensor) -> Tensor:
    """mask (B,1,g,g) on the patch grid; generated and source (B,3,H,W) pixels."""
    m = upsample(mask, source.shape[-2:])
    return m * generated + (1 - m) * source


def compose_in_latents(
    mask: Tensor, z_generated: Tensor, z_source: Tensor, decode: Callable[[Tensor], Tensor]
) -> Tensor:
    """The same blend on the latent grid, then decoded: pixels in decode's range."""
    m = upsample(mask, z_source.shape[-2:])
    return decode(m * z_generated + (1 - m) * z_source)


def resized(pixels: Tensor, side: int) -> Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 3, side, side), bicubic with antialiasing (as PIL resizes
    the source); the identity at the same side. The training step generates at
    `method.train_resolution` and brings the generation back to `method.resolution` with it."""
    if pixels.shape[-2:] == (side, side):
        return pixels
    return F.interpolate(pixels, size=(side, side), mode="bicubic", antialias=True).clamp(0, 1)
