"""Overfitting four demo samples: the head can learn under the method's losses."""

from __future__ import annotations

import statistics

import pytest
import torch

from components.data.demo_edits import demo_edit_batch
from components.method.build import build_region_edit_model


@pytest.mark.slow
def test_fifty_steps_on_four_demo_samples_lower_the_total_loss(zoo_params):
    torch.manual_seed(0)
    model = build_region_edit_model(zoo_params.models, zoo_params.method)
    batch = demo_edit_batch(4, zoo_params.method.resolution)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-3)
    totals = []
    for _ in range(50):
        out = model(*batch, generator=torch.Generator().manual_seed(0))
        optimizer.zero_grad()
        out.terms["total"].backward()
        optimizer.step()
        totals.append(out.terms["total"].item())
    first, last = statistics.mean(totals[:5]), statistics.mean(totals[-5:])
    print(
        f"L_total: first 5 steps {first:.4f}, last 5 steps {last:.4f}, drop {1 - last / first:.1%}"
    )
    assert last < 0.8 * first
