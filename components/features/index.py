"""The feature cache's index: which file holds each shard's features, and with what settings.

`features` writes index.json last, atomically, so a folder with an index is complete; training
opens the cache through `FeatureCache`, which refuses one built with other models, resolutions
or instruction length than the run's params.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from torch import Tensor

from components.config import MethodConfig, ModelsConfig
from components.features.store import (
    FORMAT,
    STORAGE_DTYPE,
    FeaturesError,
    ShardFeatures,
    read_unconditional,
)

INDEX_FILE = "index.json"
SHARDS = "shards"  # subfolder of the shard files


def cache_settings(models: ModelsConfig, method: MethodConfig) -> dict[str, object]:
    """The params a cache is built with; a run with other params may not read it."""
    return {
        "format": FORMAT,
        "dtype": str(STORAGE_DTYPE),
        "resolution": method.resolution,
        "z_src_resolution": method.in_training.resolution,
        "instruction_tokens": method.instruction_tokens,
        "models": {
            "clip": models.clip,
            "clip_pretrained": models.clip_pretrained,
            "instruction_encoder": models.instruction_encoder,
            "inpainting": models.inpainting,
        },
    }


def write_index(folder: Path, identity: dict[str, object], files: dict[str, str | None]) -> str:
    """Record the identity and each shard's file (None: nothing of it is cached); returns a
    digest of both, which names this cache's contents."""
    body = {"identity": identity, "shards": files}
    version = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    partial = folder / f".{INDEX_FILE}.partial"
    partial.write_text(json.dumps(body | {"version": version}, indent=2, sort_keys=True) + "\n")
    os.replace(partial, folder / INDEX_FILE)
    return version


class FeatureCache:
    """The output of `features`, opened for a run whose `cache_settings` are `expected`."""

    def __init__(self, folder: Path, expected: dict[str, object]) -> None:
        index = folder / INDEX_FILE
        if not index.is_file():
            raise FeaturesError(
                f"{index}: no feature cache here; run `regionedit features --out {folder}` first "
                "(or train without --features to compute the frozen features in every step)"
            )
        body = json.loads(index.read_text())
        stale = [name for name, value in expected.items() if body["identity"].get(name) != value]
        if stale:
            raise FeaturesError(
                f"{index}: built with other {', '.join(stale)} than these params; run "
                "`regionedit features` again"
            )
        self.folder, self.version = folder, body["version"]
        self.files: dict[str, str | None] = body["shards"]

    def unconditional(self) -> dict[str, Tensor]:
        return read_unconditional(self.folder)

    def shard(self, shard: str) -> ShardFeatures:
        name = self.files.get(shard)
        if name is None:
            raise FeaturesError(
                f"{self.folder / INDEX_FILE}: no cached features for shard {shard}; run "
                "`regionedit features` again on the same prepared data and descriptions"
            )
        return ShardFeatures(self.folder / SHARDS / name)
