"""From P_region to masks: threshold, straight-through gradient, grid, proposal, feathering."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def straight_through_mask(p_region: Tensor, tau: float) -> Tensor:
    """Forward: the hard mask 1[P > tau]; backward: the identity to P_region."""
    hard = (p_region > tau).to(p_region.dtype)
    return hard + p_region - p_region.detach()


def to_grid(tokens: Tensor) -> Tensor:
    """(B, N) per patch token -> (B, 1, sqrt N, sqrt N) on the image's patch grid."""
    side = math.isqrt(tokens.shape[1])
    if side * side != tokens.shape[1]:
        raise ValueError(f"{tokens.shape[1]} patch tokens do not form a square grid")
    return tokens.reshape(tokens.shape[0], 1, side, side)


def upsample(grid: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Nearest-neighbour upsampling: each cell covers its patch; linear, so gradients pass."""
    return F.interpolate(grid, size=size, mode="nearest")


def dilate(grid: Tensor, cells: int) -> Tensor:
    """Grow a {0,1} mask by `cells` in every direction (a square structuring element)."""
    if cells == 0:
        return grid
    return F.max_pool2d(grid, kernel_size=2 * cells + 1, stride=1, padding=cells)


@torch.no_grad()
def proposal_region(p_region: Tensor, tau: float, dilation: int, min_cells: int) -> Tensor:
    """Where the generator repaints during training: the hard mask and the `min_cells`
    most likely cells, dilated. Content generated beyond the hard mask lets the mask grow;
    the top cells keep an empty mask from freezing training (DESIGN §4)."""
    hard = p_region > tau
    top = p_region.topk(min(min_cells, p_region.shape[1]), dim=1).indices
    seeds = hard.scatter(1, top, True).to(p_region.dtype)
    return dilate(to_grid(seeds), dilation)


def feather(mask: Tensor, radius: int) -> Tensor:
    """A soft edge that only grows outward: blur of the mask dilated by `radius`.

    Inside the hard mask the weight stays 1; beyond 2*radius pixels it is exactly 0."""
    if radius == 0:
        return mask
    grown = dilate(mask, radius)
    kernel = 2 * radius + 1
    soft = F.avg_pool2d(grown, kernel, stride=1, padding=radius, count_include_pad=False)
    return torch.maximum(soft, mask)
