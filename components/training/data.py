"""Training data: the prepared WebDataset shards joined with descriptions, streamed per rank.

Each (rank, dataloader worker) draws shards with replacement from a stream seeded by
(seed, rank, worker) and reads the scale's samples out of them in order. The stream is
endless, so every rank runs exactly `max_steps` batches whatever the shard split (DESIGN §6:
uneven splits hang DDP), and it is a pure function of the seed, so a resumed run skips what
was consumed and continues at the same data position.

With a feature cache (the `features` stage), each sample also carries its cached frozen
features, and a batch holds them stacked as `batch["cached"]` (a CachedFeatures).

A sample whose image is unreadable (a truncated or corrupt tar, an undecodable image) is logged
once per worker with its shard and key, and skipped; the stream goes on. Skipped samples still
count as positions of the stream, and `batch["skipped"]` says how many came before the batch's
samples, so the module can count them (in its checkpoint and the scale's metrics) and a resume
can skip them too: it stays exact on damaged data.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, default_collate, get_worker_info

from components.data.scales import scale_keys, scale_subset
from components.data.shards import ShardImage, UnreadableImage, shard_images
from components.data.tables import parquet_batches
from components.features.index import FeatureCache
from components.features.source import source_pixels
from components.features.store import FeaturesError, ShardFeatures, stack_samples

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Description:
    t_o: str
    t_ins: str
    t_e: str


@dataclass(frozen=True)
class Scale:
    """The samples of one scale, held compactly: their keys, sorted, and how many each shard
    holds. Their descriptions are read a shard at a time, so a million samples cost about
    20 MiB here (and in each loader worker), not a table of strings."""

    name: str
    descriptions: Path  # descriptions.parquet: rows in manifest order, with their shard
    keys: np.ndarray  # bytes, sorted
    per_shard: dict[str, int]

    def __len__(self) -> int:
        return len(self.keys)

    def holds(self, keys: np.ndarray) -> np.ndarray:
        """Which of `keys` (a bytes array) are samples of the scale."""
        if not len(self.keys):
            return np.zeros(len(keys), dtype=bool)
        at = np.searchsorted(self.keys, keys).clip(max=len(self.keys) - 1)
        return self.keys[at] == keys

    def descriptions_of(self, shard: str) -> dict[str, Description]:
        """The scale's samples in `shard`, in shard order, with their descriptions."""
        table = pq.read_table(
            self.descriptions,
            columns=["key", "t_o", "t_ins", "t_e"],
            filters=[("shard", "==", shard), ("status", "==", "ok")],
        )
        keys = table.column("key").to_pylist()
        texts = (table.column(name).to_pylist() for name in ("t_o", "t_ins", "t_e"))
        held = self.holds(np.array(keys, dtype=np.bytes_))
        return {
            key: Description(*text)
            for key, *text, in_scale in zip(keys, *texts, held, strict=True)
            if in_scale
        }


def scale_of(prepared: Path, descriptions: Path, count: int, seed: int, name: str) -> Scale:
    """The scale: the first `count` described samples of the manifest in the seeded order.
    Both tables are read a batch at a time."""
    columns = pq.ParquetFile(descriptions).schema_arrow.names
    if missing := {"key", "shard", "t_o", "t_ins", "t_e", "status"} - set(columns):
        raise ValueError(
            f"{descriptions}: no column {sorted(missing)}; point at the descriptions.parquet "
            "that `regionedit describe` writes"
        )
    described = _keys(
        descriptions, ["key", "status"], lambda batch: pc.equal(batch.column(1), "ok")
    )
    described.sort()
    in_manifest = np.zeros(len(described), dtype=bool)  # one byte per sample, not a key copy
    for listed, _ in _key_batches(prepared / "manifest.parquet", ["key"]):
        if len(described):
            at = np.searchsorted(described, listed).clip(max=len(described) - 1)
            in_manifest[at[described[at] == listed]] = True
    keys = scale_keys(described[in_manifest], count, seed, name)
    del described, in_manifest
    keys.sort()
    scale, per_shard = Scale(name, descriptions, keys, {}), Counter()
    for listed, batch in _key_batches(descriptions, ["key", "shard"]):
        held = scale.holds(listed)
        per_shard.update(np.array(batch.column(1).to_pylist(), dtype=object)[held].tolist())
    return Scale(name, descriptions, keys, dict(per_shard))


def _key_batches(path: Path, columns: list[str]) -> Iterator[tuple[np.ndarray, pa.RecordBatch]]:
    """Batches of `columns` (the first is `key`) of a parquet file, each with its keys as a
    bytes array."""
    for batch in parquet_batches(path, columns):
        yield np.array(batch.column(0).to_pylist(), dtype=np.bytes_), batch


def _keys(path: Path, columns: list[str], where=None) -> np.ndarray:
    """The `key` column of a parquet file as a bytes array, rows filtered by `where(batch)`."""
    parts = []
    for keys, batch in _key_batches(path, columns):
        parts.append(keys if where is None else keys[where(batch).to_numpy(zero_copy_only=False)])
    return np.concatenate(parts) if parts else np.array([], dtype=np.bytes_)


def scale_samples(
    prepared: Path, descriptions: Path, count: int, seed: int, scale: str
) -> pd.DataFrame:
    """Manifest rows of the scale with their descriptions, in the seeded order: for the small
    sets that want a table (the world's pair editors, tests); training streams a `Scale`."""
    manifest = pd.read_parquet(prepared / "manifest.parquet")
    described = pd.read_parquet(descriptions, columns=["key", "t_o", "t_ins", "t_e", "status"])
    described = described[described["status"] == "ok"].drop(columns="status")
    joined = manifest.merge(described, on="key", how="inner")
    return scale_subset(joined, count, seed, name=scale)


class ScaleStream(IterableDataset):
    """Endless (image, t_o, t_ins, t_e[, cached features]) samples of one scale for one rank,
    each with the count of samples skipped as unreadable just before it."""

    def __init__(
        self,
        scale: Scale,
        shards: Path,
        resolution: int,
        seed: int,
        rank: int,
        batch_size: int,
        start_batch: int = 0,
        features: FeatureCache | None = None,
        skipped_before: Sequence[int] = (),
    ) -> None:
        """`skipped_before`: per loader worker, the samples its stream skipped in the
        `start_batch` batches already trained on (RegionEditModule.skipped); none if empty."""
        super().__init__()
        self.scale = scale
        self.shards, self.resolution, self.seed, self.rank = shards, resolution, seed, rank
        self.batch_size, self.start_batch = batch_size, start_batch
        self.features, self.skipped_before = features, skipped_before
        self.reported: set[tuple[str, str]] = set()

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        # the DataLoader takes whole batches from its workers in turn, from worker 0 on: after a
        # resume, worker w makes the batches that worker (start_batch + w) % workers made
        stream = (worker + self.start_batch) % workers
        done = len(range(stream, self.start_batch, workers)) * self.batch_size
        done += self.skipped_before[stream] if self.skipped_before else 0
        rng = random.Random(f"{self.seed}:{self.rank}:{stream}")
        names = sorted(self.scale.per_shard)
        skipped = 0
        while True:
            shard = rng.choice(names)
            if done >= self.scale.per_shard[shard]:  # consumed before the resume: skip unread
                done -= self.scale.per_shard[shard]
                continue
            wanted = self.scale.descriptions_of(shard)
            cached = self.features.shard(shard) if self.features else None
            for image in shard_images(self.shards / shard, wanted):
                if done:
                    done -= 1
                    continue
                sample = self._sample(shard, image, wanted[image.key], cached)
                if sample is None:
                    skipped += 1
                    continue
                yield sample | {"skipped": skipped}
                skipped = 0

    def _sample(
        self,
        shard: str,
        image: ShardImage,
        description: Description,
        cached: ShardFeatures | None,
    ) -> dict | None:
        """The training sample, or None (logged once) if its image is unreadable."""
        try:
            if cached is not None and image.key in cached.unreadable:
                raise UnreadableImage("unreadable when `features` ran: it has no cached features")
            pixels = source_pixels(image.data, self.resolution)
        except UnreadableImage as err:
            if (shard, image.key) not in self.reported:
                self.reported.add((shard, image.key))
                log.warning("%s: sample %s skipped: %s", self.shards / shard, image.key, err)
            return None
        out = {
            "image": pixels,
            "key": image.key,
            "t_o": description.t_o,
            "t_ins": description.t_ins,
            "t_e": description.t_e,
        }
        return out if cached is None else out | {"features": cached.sample(image.key)}


class CachedCollate:
    """The DataLoader's default collation; samples' cached features become one CachedFeatures,
    their skip counts one int (not a tensor: counting it needs no device sync)."""

    def __init__(self, unconditional: dict[str, Tensor] | None) -> None:
        self.unconditional = unconditional

    def __call__(self, samples: list[dict]) -> dict:
        own = ("features", "skipped")
        batch = default_collate([{k: v for k, v in s.items() if k not in own} for s in samples])
        batch["skipped"] = sum(s["skipped"] for s in samples)
        if self.unconditional is not None:
            features = [s["features"] for s in samples]
            batch["cached"] = stack_samples(features, self.unconditional)
        return batch


def check_cached(scale: Scale, features: FeatureCache) -> None:
    """Every sample of the scale has cached features of its current descriptions; fails before
    training otherwise. A sample `features` skipped for an unreadable image is no failure: it
    stays in the scale (which samples a scale holds never depends on the cache), and the stream
    skips and counts it as it does any unreadable sample."""
    for shard in sorted(scale.per_shard):
        cached, rows = features.shard(shard), scale.descriptions_of(shard)
        missing = [key for key in rows if key not in cached and key not in cached.unreadable]
        stale = [
            key
            for key, text in rows.items()
            if key in cached and not cached.described_as(key, text.t_o, text.t_ins, text.t_e)
        ]
        for keys, problem in (
            (missing, "no cached features"),
            (stale, "features of other descriptions"),
        ):
            if keys:
                raise FeaturesError(
                    f"{cached.path}: {problem} for {len(keys)} sample(s) of the scale, e.g. "
                    f"{keys[0]}; run `regionedit features` again on the same data and descriptions"
                )


class RegionEditDataModule(L.LightningDataModule):
    """The scale's samples as a stream; resumes at the trainer's restored global step."""

    def __init__(
        self,
        prepared: Path,
        descriptions: Path,
        scale: str,
        count: int,
        seed: int,
        resolution: int,
        batch_size: int,
        num_workers: int,
        features: FeatureCache | None = None,
    ) -> None:
        super().__init__()
        self.prepared, self.descriptions = prepared, descriptions
        self.scale, self.count, self.seed = scale, count, seed
        self.resolution, self.batch_size, self.num_workers = resolution, batch_size, num_workers
        self.features = features
        self.samples: Scale | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.samples is None:
            self.samples = scale_of(
                self.prepared, self.descriptions, self.count, self.seed, self.scale
            )
            if self.features is not None:
                check_cached(self.samples, self.features)

    def train_dataloader(self) -> DataLoader:
        stream = ScaleStream(
            self.samples,
            self.prepared / "shards",
            self.resolution,
            self.seed,
            self.trainer.global_rank,
            self.batch_size,
            start_batch=self.trainer.global_step,
            features=self.features,
            skipped_before=self.trainer.lightning_module.skipped,
        )
        return DataLoader(
            stream,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=CachedCollate(self.features.unconditional() if self.features else None),
        )
