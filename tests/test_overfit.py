"""Overfitting four demo samples: the region path learns under the method's losses.

L_total alone proves little: f_sem can lower it through L_semAlign without the region moving.
L_CLIP depends on the head only through the mask, so its fall is the region path learning.
The run is `benchmarks/head_forms.py`'s, on the default (residual) head."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def head_forms():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import head_forms

        yield head_forms
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.mark.slow
def test_fifty_steps_on_four_demo_samples_lower_the_clip_loss_through_the_region(
    zoo_params, head_forms
):
    run = head_forms.measure(zoo_params, zoo_params.method.head, steps=50)
    (total_0, total_1), (clip_0, clip_1) = run["l_total_first5_last5"], run["l_clip_first5_last5"]
    changed = run["mask_cells_changed"]
    print(
        f"first 5 -> last 5 steps: L_total {total_0:.4f} -> {total_1:.4f}, "
        f"L_CLIP {clip_0:.4f} -> {clip_1:.4f}; mask cells changed {changed:.1%}"
    )
    assert total_1 < 0.8 * total_0
    assert changed > 0.1  # the region itself moved
    assert clip_1 < 0.97 * clip_0  # and the edit it makes reads better to CLIP
