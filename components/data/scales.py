"""Nested training subsets: scale n is the first n samples of one fixed, seeded order.

The order sorts keys by a 64-bit hash of (seed, key), ties by the key, so adding samples never
reorders existing ones. Keys travel as a NumPy bytes array (20 bytes per prepared key): a
million-sample scale costs tens of megabytes, not a DataFrame of Python strings.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def seeded_ranks(keys: np.ndarray, seed: int) -> np.ndarray:
    """The first 8 bytes of sha256("<seed>:<key>") per key, as unsigned integers."""
    prefix = f"{seed}:".encode()
    return np.fromiter(
        (int.from_bytes(hashlib.sha256(prefix + key).digest()[:8], "big") for key in keys),
        dtype=np.uint64,
        count=len(keys),
    )


def scale_keys(keys: np.ndarray, n: int, seed: int, name: str = "") -> np.ndarray:
    """The first `n` of `keys` (a bytes array) in the seeded order, in that order; the keys of
    a smaller n are a prefix of these."""
    if n > len(keys):
        raise ValueError(
            f"scale {name or n}: needs {n} samples but the manifest has {len(keys)}; "
            "prepare more data or lower the count under `scales` in params.yaml"
        )
    order = np.lexsort((keys, seeded_ranks(keys, seed)))  # the last key sorts first
    return keys[order[:n]]


def scale_subset(manifest: pd.DataFrame, n: int, seed: int, name: str = "") -> pd.DataFrame:
    """Manifest rows of the first `n` samples in the seeded order; smaller n is a subset."""
    keys = scale_keys(manifest["key"].to_numpy().astype(np.bytes_), n, seed, name)
    return manifest.set_index("key").loc[keys.astype(str)].reset_index()
