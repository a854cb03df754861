"""Overfitting four demo samples: the region path learns under the method's losses.

L_total alone proves little: f_sem can lower it through L_semAlign without the region moving.
L_CLIP depends on the head only through the mask, so its fall is the region path learning."""

from __future__ import annotations

import statistics

import pytest
import torch

from components.data.demo_edits import demo_edit_batch
from components.method.build import build_region_edit_model


@pytest.mark.slow
def test_fifty_steps_on_four_demo_samples_lower_the_clip_loss_through_the_region(zoo_params):
    torch.manual_seed(0)
    model = build_region_edit_model(zoo_params.models, zoo_params.method)
    batch = demo_edit_batch(4, zoo_params.method.resolution)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-3)
    totals, clips, masks = [], [], []
    for _ in range(50):
        out = model(*batch, generator=torch.Generator().manual_seed(0))
        optimizer.zero_grad()
        out.terms["total"].backward()
        optimizer.step()
        totals.append(out.terms["total"].item())
        clips.append(out.terms["clip"].item())
        masks.append(out.mask.detach() > 0.5)

    def first_last(values):
        return statistics.mean(values[:5]), statistics.mean(values[-5:])

    (total_0, total_1), (clip_0, clip_1) = first_last(totals), first_last(clips)
    changed = (masks[-1] != masks[0]).float().mean().item()
    print(
        f"first 5 -> last 5 steps: L_total {total_0:.4f} -> {total_1:.4f}, "
        f"L_CLIP {clip_0:.4f} -> {clip_1:.4f}; mask cells changed {changed:.1%}"
    )
    assert total_1 < 0.8 * total_0
    assert changed > 0.1  # the region itself moved
    assert clip_1 < 0.97 * clip_0  # and the edit it makes reads better to CLIP
