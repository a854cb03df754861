"""Each loss equals a hand computation on small fixed tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from components.method.losses import (
    DIRECTION_FLOOR,
    ClipGuidanceLoss,
    RegionEditLoss,
    SemanticAlignmentLoss,
    clip_direction_loss,
    cosine_distance,
    patch_similarity,
)


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_cosine_distance_by_hand():
    assert cosine_distance(t([1, 0]), t([0, 1])).item() == pytest.approx(1.0)
    assert cosine_distance(t([2, 0]), t([5, 0])).item() == pytest.approx(0.0)
    assert cosine_distance(t([1, 1]), t([1, 0])).item() == pytest.approx(1 - 1 / math.sqrt(2))
    assert cosine_distance(t([1, 0]), t([-3, 0])).item() == pytest.approx(2.0)


def test_semantic_alignment_by_hand():
    # d(f_sem(F_Editedimg), T_e) + d(f_sem(F_img), T_o), averaged over the batch of two
    terms = SemanticAlignmentLoss()(
        t([1, 0], [1, 1]), t([1, 0], [0, 1]), t([0, 1], [1, 1]), t([1, 0], [0, -1])
    )
    assert terms["sem_align"].item() == pytest.approx(((1 + 0) + (0 + 2)) / 2)


def test_clip_guidance_by_hand():
    i_res, i_ori = t([3, 4]), t([3, 0])
    t_e, t_o = t([4, 3]), t([0, 3])
    f_img = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # Sim = identity
    f_res = torch.tensor([[[1.0, 0.0], [2.0, 0.0]]])  # Sim = all ones
    terms = ClipGuidanceLoss()(i_res, i_ori, t_e, t_o, f_res, f_img)
    assert terms["clip_global"].item() == pytest.approx(1 - 24 / 25)
    # directions: (0, 4) vs (4, 0) are orthogonal
    assert terms["clip_direction"].item() == pytest.approx(1.0)
    # Eq. 9 sums (I - ones)^2 over the N x N entries: two 1s among four
    assert terms["clip_structure"].item() == pytest.approx(2.0)
    assert terms["clip_direction_floored"].item() == 0


def test_patch_similarity_is_pairwise_cosine():
    tokens = torch.tensor([[[3.0, 4.0], [4.0, 3.0], [0.0, 2.0]]])
    sim = patch_similarity(tokens)[0]
    assert sim[0, 1].item() == pytest.approx(24 / 25)
    assert sim[0, 2].item() == pytest.approx(4 / 5)
    assert torch.allclose(sim.diagonal(), torch.ones(3))


def test_total_weights_every_term():
    loss = RegionEditLoss(alpha=2.0, beta=0.5, lambda_g=1.0, lambda_d=3.0, lambda_s=10.0)
    f_img = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    f_res = torch.tensor([[[1.0, 0.0], [2.0, 0.0]]])
    terms = loss(t([1, 0]), t([1, 0]), t([3, 4]), t([3, 0]), t([4, 3]), t([0, 3]), f_res, f_img)
    sem = (
        cosine_distance(t([1, 0]), t([4, 3])).item() + cosine_distance(t([1, 0]), t([0, 3])).item()
    )
    clip = 1.0 * (1 / 25) + 3.0 * 1.0 + 10.0 * 2.0
    assert terms["sem_align"].item() == pytest.approx(sem)
    assert terms["clip"].item() == pytest.approx(clip)
    assert terms["total"].item() == pytest.approx(2.0 * sem + 0.5 * clip)


def test_structure_loss_is_a_sum_over_the_similarity_entries_not_a_mean():
    # N = 3 tokens: Sim(F_img) = I, Sim(F_res) = all ones -> six off-diagonal 1s, summed
    f_img = torch.eye(3).unsqueeze(0)
    f_res = torch.ones(1, 3, 3)
    terms = ClipGuidanceLoss()(t([1, 0]), t([0, 1]), t([1, 0]), t([0, 1]), f_res, f_img)
    assert terms["clip_structure"].item() == pytest.approx(6.0)


def test_direction_loss_is_eq_8_above_the_floor_and_pulls_along_the_text_below_it():
    # sample 0 changed along the text direction ((0, 4) against (0, 3): distance 0); sample 1
    # did not: it scores 1, no step along the direction, and is pulled along T_e - T_o
    i_res = t([3, 4], [0, 1]).requires_grad_(True)
    i_ori = t([3, 0], [0, 1])
    t_e, t_o = t([0, 6], [1, 0]), t([0, 3], [0, 1])
    f = torch.eye(2).unsqueeze(0).expand(2, 2, 2)
    terms = ClipGuidanceLoss()(i_res, i_ori, t_e, t_o, f, f)
    assert terms["clip_direction"].item() == pytest.approx(0.5)
    assert terms["clip_direction_floored"].item() == 1
    terms["clip_direction"].backward()
    assert torch.isfinite(i_res.grad).all()
    # the unchanged sample: -(T_e - T_o)/|T_e - T_o| / floor, over the batch of 2
    pull = -torch.tensor([1.0, -1.0]) / 2**0.5 / DIRECTION_FLOOR / 2
    assert torch.allclose(i_res.grad[1], pull)
    assert i_res.grad[0].abs().max() < 1.0


def test_direction_loss_is_continuous_at_the_floor_and_its_gradient_bounded():
    direction = torch.tensor([[0.6, 0.8]])
    for scale in (0.5, 0.999, 1.0, 1.001, 2.0):  # changes around the floor, at 45 degrees
        change = (torch.tensor([[1.0, 1.0]]) / 2**0.5 * DIRECTION_FLOOR * scale).requires_grad_()
        loss, _ = clip_direction_loss(change, torch.zeros(1, 2), direction, torch.zeros(1, 2))
        cosine = F.cosine_similarity(change, direction).item()
        expected = 1 - cosine * min(scale, 1.0)  # 1 - cos above, shrunk linearly below
        assert loss.item() == pytest.approx(expected, abs=1e-5), scale
        loss.backward()
        assert 0 < change.grad.norm().item() <= 1 / DIRECTION_FLOOR + 1e-4, scale


def test_direction_loss_is_one_with_a_bounded_pull_when_nothing_changed():
    i = t([0, 1], [1, 0]).requires_grad_(True)
    t_e, t_o = t([1, 0], [0, 1]), t([0, 1], [1, 0])
    terms = ClipGuidanceLoss()(
        i, i.detach(), t_e, t_o, *[torch.eye(2).unsqueeze(0).expand(2, 2, 2)] * 2
    )
    assert terms["clip_direction"].item() == 1.0  # an empty edit is no step along the direction
    assert terms["clip_direction_floored"].item() == 2
    terms["clip_direction"].backward()
    assert torch.isfinite(i.grad).all()
    # descending the loss moves each embedding along its own T_e - T_o
    assert (-(i.grad * (t_e - t_o)).sum(-1) > 0).all()
    assert i.grad.norm(dim=-1).max().item() == pytest.approx(1 / DIRECTION_FLOOR / 2)
