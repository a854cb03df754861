"""Nested training subsets: scale n is the first n samples of one fixed, seeded order."""

from __future__ import annotations

import hashlib

import pandas as pd


def scale_order(keys: pd.Series, seed: int) -> pd.Series:
    """Keys sorted by a seeded hash of the key: adding samples never reorders existing ones."""
    rank = keys.map(lambda key: hashlib.sha256(f"{seed}:{key}".encode()).hexdigest())
    return keys.iloc[rank.argsort(kind="stable").to_numpy()].reset_index(drop=True)


def scale_subset(manifest: pd.DataFrame, n: int, seed: int, name: str = "") -> pd.DataFrame:
    """Manifest rows of the first `n` samples in the seeded order; smaller n is a subset."""
    if n > len(manifest):
        raise ValueError(
            f"scale {name or n}: needs {n} samples but the manifest has {len(manifest)}; "
            "prepare more data or lower the count under `scales` in params.yaml"
        )
    keys = scale_order(manifest["key"], seed).iloc[:n]
    return manifest.set_index("key").loc[keys].reset_index()
