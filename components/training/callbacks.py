"""Training callbacks: region pictures, loss curves and training compute (rank 0), a per-rank
report (every rank)."""

from __future__ import annotations

import csv
import hashlib
import json
import resource
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from components.pictures import region_grid
from components.training.compute import compute_record, flop_counter

LOSS_COLUMNS = (
    "step",
    "total",
    "sem_align",
    "clip",
    "clip_global",
    "clip_direction",
    "clip_structure",
    "clip_direction_floored",  # samples whose edit moved I_res by less than L_CLIPd's floor
    "mask_fraction",
    "empty_masks",  # samples whose hard mask is empty
    "grad_norm",  # the head's gradient norm before clipping (train.gradient_clip_val)
)


class RegionPictures(L.Callback):
    """Every `every` steps, rank 0 logs an image | region | edit grid to the MLflow run."""

    def __init__(self, every: int) -> None:
        self.every = every

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        outputs: Any,
        batch: dict,
        batch_idx: int,
    ) -> None:
        step = trainer.global_step
        logger = trainer.logger
        if not trainer.is_global_zero or logger is None or step % self.every:
            return
        grid = region_grid(batch["image"], outputs["mask"], outputs["result"])
        logger.experiment.log_image(logger.run_id, grid, f"regions/step-{step:06d}.png")


class StepLosses(L.Callback):
    """Rank 0 writes every step's loss terms to the CSV (DVC plots) and to the MLflow run.

    Lightning runs checkpoint callbacks after all others, so a step's losses are recorded
    before a checkpoint can claim that step: a run killed after a checkpoint has lost nothing
    the resume will not redo. A resume keeps the CSV rows up to the restored step (read in
    on_train_start, after the restore), so the curve has each step once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        kept = []
        if self.path.exists():
            with self.path.open(newline="") as handle:
                kept = [
                    row for row in csv.DictReader(handle) if int(row["step"]) <= trainer.global_step
                ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, LOSS_COLUMNS)
            writer.writeheader()
            writer.writerows(kept)

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        outputs: Any,
        batch: dict,
        batch_idx: int,
    ) -> None:
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        row = {"step": trainer.global_step}
        row |= {name: f"{float(metrics[f'train/{name}']):.6f}" for name in LOSS_COLUMNS[1:]}
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, LOSS_COLUMNS).writerow(row)
        if trainer.logger is not None:
            losses = {
                f"train/{name}": float(value) for name, value in row.items() if name != "step"
            }
            trainer.logger.log_metrics(losses, step=trainer.global_step)


class RankReport(L.Callback):
    """Each rank writes what it did: batches, a checksum of its head (DDP ranks must agree),
    samples/s, the share of wall time spent waiting between batches (an upper bound on data
    loading, which must not be the bottleneck) and its peak memory."""

    def __init__(self, folder: Path, batch_size: int) -> None:
        self.folder, self.batch_size = folder, batch_size
        self.batches, self.waited = 0, 0.0
        self.started = self.last_end = 0.0

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started = self.last_end = time.perf_counter()

    def on_train_batch_start(self, *args: Any) -> None:
        self.waited += time.perf_counter() - self.last_end

    def on_train_batch_end(self, *args: Any) -> None:
        self.batches += 1
        self.last_end = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        seconds = time.perf_counter() - self.started
        digest = hashlib.sha256()
        for _, tensor in sorted(module.model.head.state_dict().items()):
            digest.update(tensor.detach().cpu().to(torch.float32).numpy().tobytes())
        self.folder.mkdir(parents=True, exist_ok=True)
        report = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "batches": self.batches,
            "global_step": trainer.global_step,
            "head_sha256": digest.hexdigest(),
            "seconds": seconds,
            "samples_per_second": self.batches * self.batch_size / seconds,
            "data_wait_share": self.waited / seconds,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        (self.folder / f"rank-{trainer.global_rank}.json").write_text(json.dumps(report))


class TrainingCompute(L.Callback):
    """Counts the FLOPs of this process's first step (forward, backward, optimiser) and, at
    the end, rank 0 writes what the training cost (`compute_record`: FLOPs per sample, in
    total over every step of every rank, and this run's seconds) to `path` and to the run."""

    def __init__(self, path: Path, batch_size: int) -> None:
        self.path, self.batch_size = path, batch_size
        self.counter, self.flops_per_sample, self.started = None, 0.0, 0.0

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_batch_start(self, *args: Any) -> None:
        if not self.flops_per_sample and self.counter is None:
            self.counter = flop_counter()
            self.counter.__enter__()

    def on_train_batch_end(self, *args: Any) -> None:
        if self.counter is not None:
            self.counter.__exit__(None, None, None)
            self.flops_per_sample = self.counter.get_total_flops() / self.batch_size
            self.counter = None

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not self.flops_per_sample:  # no step ran here
            return
        samples = trainer.global_step * self.batch_size * trainer.world_size
        record = compute_record(self.flops_per_sample, samples, time.perf_counter() - self.started)
        self.path.write_text(json.dumps(record, indent=2) + "\n")
        if trainer.logger is not None:
            trainer.logger.log_metrics({f"compute/{k}": float(v) for k, v in record.items()})
