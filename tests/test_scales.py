"""Scale subsets are nested: every smaller scale is contained in every larger one."""

from __future__ import annotations

import pandas as pd
import pytest

from components.data.scales import scale_subset


def manifest(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"key": [f"{i:020x}" for i in range(n)], "caption": [str(i) for i in range(n)]}
    )


def test_smaller_scales_are_prefixes_of_larger_ones():
    data = manifest(200)
    subsets = [scale_subset(data, n, seed=0) for n in (20, 40, 60, 80, 100)]
    for small, large in zip(subsets, subsets[1:], strict=False):
        assert list(large["key"][: len(small)]) == list(small["key"])
    assert subsets[0]["key"].is_unique and len(subsets[-1]) == 100
    row = subsets[0].iloc[0]
    assert data.set_index("key").loc[row.key, "caption"] == row.caption  # rows stay whole


def test_order_is_seeded_and_not_the_manifest_order():
    data = manifest(200)
    first = list(scale_subset(data, 50, seed=0)["key"])
    assert first == list(scale_subset(data, 50, seed=0)["key"])
    assert first != list(scale_subset(data, 50, seed=1)["key"])
    assert first != list(data["key"][:50])


def test_adding_samples_does_not_reorder_existing_ones():
    grown = scale_subset(manifest(300), 300, seed=0)["key"]
    old = set(manifest(200)["key"])
    assert list(grown[grown.isin(old)]) == list(scale_subset(manifest(200), 200, seed=0)["key"])


def test_asking_for_more_than_there_is_says_what_to_do():
    with pytest.raises(ValueError, match="scale 5M: needs 300 samples but the manifest has 200"):
        scale_subset(manifest(200), 300, seed=0, name="5M")
