"""Masks: hard forward, straight-through backward, grids, proposals never empty, feathering."""

from __future__ import annotations

import torch

from components.method.mask import (
    dilate,
    feather,
    proposal_region,
    straight_through_mask,
    to_grid,
    upsample,
)


def test_straight_through_is_hard_forward_and_identity_backward():
    p = torch.tensor([[0.2, 0.6, 0.5, 0.9]], requires_grad=True)
    m = straight_through_mask(p, tau=0.5)
    assert m.tolist() == [[0.0, 1.0, 0.0, 1.0]]
    (m * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert p.grad.tolist() == [[1.0, 2.0, 3.0, 4.0]]


def test_grid_and_upsampling_keep_the_patch_layout():
    grid = to_grid(torch.arange(4.0)[None])
    assert grid.shape == (1, 1, 2, 2) and grid[0, 0, 0, 1] == 1
    up = upsample(grid, 4)
    assert up[0, 0, :2, 2:].eq(1).all() and up[0, 0, 2:, :2].eq(2).all()


def test_dilation_grows_by_whole_cells():
    grid = torch.zeros(1, 1, 5, 5)
    grid[0, 0, 2, 2] = 1
    assert dilate(grid, 1).sum() == 9 and dilate(grid, 2).sum() == 25 and dilate(grid, 0).sum() == 1


def test_proposal_covers_the_mask_and_is_never_empty():
    p = torch.full((1, 16), 0.1)
    p[0, 5] = 0.3  # nothing above tau: the hard mask is empty
    proposal = proposal_region(p, tau=0.5, dilation=0, min_cells=1)
    assert proposal.sum() == 1 and proposal.flatten()[5] == 1
    p[0, 0] = 0.9
    proposal = proposal_region(p, tau=0.5, dilation=1, min_cells=1)
    assert proposal.flatten()[0] == 1 and proposal.flatten()[1] == 1  # mask cell + neighbour
    assert proposal.flatten()[15] == 0


def test_feather_keeps_the_inside_and_stops_at_twice_the_radius():
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 12:20, 12:20] = 1
    soft = feather(mask, 3)
    assert soft[..., 12:20, 12:20].eq(1).all()
    assert soft[..., 10, 15] > 0 and soft[..., 5, 15] == 0  # 6 = 2 * radius away: exactly 0
    assert ((soft >= 0) & (soft <= 1)).all()
