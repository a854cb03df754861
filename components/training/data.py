"""Training data: the prepared WebDataset shards joined with descriptions, streamed per rank.

Each (rank, dataloader worker) draws shards with replacement from a stream seeded by
(seed, rank, worker) and reads the scale's samples out of them in order. The stream is
endless, so every rank runs exactly `max_steps` batches whatever the shard split (DESIGN §6:
uneven splits hang DDP), and it is a pure function of the seed, so a resumed run skips what
was consumed and continues at the same data position.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
import webdataset as wds
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from components.data.scales import scale_subset


@dataclass(frozen=True)
class Description:
    t_o: str
    t_ins: str
    t_e: str


def scale_samples(
    prepared: Path, descriptions: Path, count: int, seed: int, scale: str
) -> pd.DataFrame:
    """Manifest rows of the scale: the first `count` described samples in the seeded order."""
    manifest = pd.read_parquet(prepared / "manifest.parquet")
    described = pd.read_parquet(descriptions, columns=["key", "t_o", "t_ins", "t_e", "status"])
    described = described[described["status"] == "ok"].drop(columns="status")
    joined = manifest.merge(described, on="key", how="inner")
    return scale_subset(joined, count, seed, name=scale)


class ScaleStream(IterableDataset):
    """Endless (image, t_o, t_ins, t_e) samples of one scale for one rank."""

    def __init__(
        self,
        samples: pd.DataFrame,
        shards: Path,
        resolution: int,
        seed: int,
        rank: int,
        batch_size: int,
        start_batch: int = 0,
    ) -> None:
        super().__init__()
        self.by_shard = {
            shard: {row.key: Description(row.t_o, row.t_ins, row.t_e) for row in rows.itertuples()}
            for shard, rows in samples.groupby("shard", sort=True)
        }
        self.shards, self.resolution, self.seed, self.rank = shards, resolution, seed, rank
        self.batch_size, self.start_batch = batch_size, start_batch

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        # the DataLoader takes whole batches from its workers in turn
        done = len(range(worker, self.start_batch, workers)) * self.batch_size
        rng = random.Random(f"{self.seed}:{self.rank}:{worker}")
        names = sorted(self.by_shard)
        while True:
            shard = rng.choice(names)
            wanted = self.by_shard[shard]
            if done >= len(wanted):  # already consumed before the resume: skip unread
                done -= len(wanted)
                continue
            # the stream already chose this shard for its rank and worker: split no further
            for sample in wds.WebDataset(
                str(self.shards / shard),
                shardshuffle=False,
                nodesplitter=_unsplit,
                workersplitter=_unsplit,
                empty_check=False,
            ):
                description = wanted.get(sample["__key__"])
                if description is None:
                    continue
                if done:
                    done -= 1
                    continue
                yield self._sample(sample, description)

    def _sample(self, sample: dict, description: Description) -> dict:
        data = sample.get("jpg", sample.get("png"))
        image = Image.open(io.BytesIO(data)).convert("RGB")
        image = image.resize((self.resolution, self.resolution), Image.Resampling.BICUBIC)
        pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
        return {
            "image": pixels,
            "key": sample["__key__"],
            "t_o": description.t_o,
            "t_ins": description.t_ins,
            "t_e": description.t_e,
        }


def _unsplit(urls: Iterator[dict]) -> Iterator[dict]:
    yield from urls


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
    ) -> None:
        super().__init__()
        self.prepared, self.descriptions = prepared, descriptions
        self.scale, self.count, self.seed = scale, count, seed
        self.resolution, self.batch_size, self.num_workers = resolution, batch_size, num_workers
        self.samples: pd.DataFrame | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.samples is None:
            self.samples = scale_samples(
                self.prepared, self.descriptions, self.count, self.seed, self.scale
            )

    def train_dataloader(self) -> DataLoader:
        stream = ScaleStream(
            self.samples,
            self.prepared / "shards",
            self.resolution,
            self.seed,
            self.trainer.global_rank,
            self.batch_size,
            start_batch=self.trainer.global_step,
        )
        return DataLoader(
            stream,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
