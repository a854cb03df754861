"""Fit one scale on this process (one rank); the same function runs in-process or under torchrun."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger

from components.config import Params
from components.features.index import FeatureCache, cache_settings
from components.method.build import build_region_edit_model
from components.training.callbacks import (
    RankReport,
    RegionPictures,
    StepLosses,
    TrainingCompute,
)
from components.training.data import RegionEditDataModule
from components.training.module import RegionEditModule

LAST = "last.ckpt"
COMPUTE = "compute.json"  # what the training cost (TrainingCompute), in the scale's folder


@dataclass(frozen=True)
class ScaleRun:
    """Where one scale's training reads and writes."""

    scale: str
    prepared: Path  # output of `prepare`
    descriptions: Path  # descriptions.parquet of `describe`
    folder: Path  # checkpoints of this scale
    loss_curve: Path  # CSV for DVC plots
    run_id: str | None  # MLflow child run (None: no tracking)
    tracking_uri: str | None
    features: Path | None = None  # output of `features`; None: frozen features in every step


def fit_scale(params: Params, run: ScaleRun, resume: bool) -> None:
    """Train the head on the scale's nested subset for `train.steps_for(count)` steps."""
    cfg = params.train
    warnings.filterwarnings("ignore", r"Found \d+ module\(s\) in eval mode")  # frozen by design
    L.seed_everything(params.seed, workers=True, verbose=False)
    torch.manual_seed(params.seed)  # the same fresh head on every rank
    model = build_region_edit_model(params.models, params.method)
    module = RegionEditModule(model, cfg, params.seed)
    features = None
    if run.features is not None:
        features = FeatureCache(run.features, cache_settings(params.models, params.method))
    data = RegionEditDataModule(
        run.prepared,
        run.descriptions,
        run.scale,
        params.scales[run.scale],
        params.seed,
        params.method.resolution,
        cfg.batch_size,
        cfg.num_workers,
        features,
    )
    logger = False
    if run.run_id is not None:
        logger = MLFlowLogger(
            experiment_name=params.tracking.experiment,
            run_id=run.run_id,
            tracking_uri=run.tracking_uri,
            synchronous=True,  # a killed run must not take its last steps' metrics with it
        )
    trainer = L.Trainer(
        max_steps=cfg.steps_for(params.scales[run.scale]),
        gradient_clip_val=cfg.gradient_clip_val,
        gradient_clip_algorithm="norm",
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        precision=cfg.precision,
        logger=logger,
        callbacks=[
            ModelCheckpoint(
                dirpath=run.folder,
                filename="step-{step:06d}",
                save_top_k=1,
                auto_insert_metric_name=False,
                every_n_train_steps=cfg.checkpoint_every,
                save_last=True,
            ),
            RegionPictures(cfg.image_every),
            StepLosses(run.loss_curve),
            RankReport(run.folder / "ranks", cfg.batch_size),
            TrainingCompute(run.folder / COMPUTE, cfg.batch_size),
        ],
        log_every_n_steps=1,
        enable_model_summary=False,
        enable_progress_bar=True,
        use_distributed_sampler=False,  # the stream splits data per rank itself
        default_root_dir=run.folder,
        deterministic=False,
    )
    last = run.folder / LAST
    trainer.fit(
        module,
        datamodule=data,
        ckpt_path=last if resume and last.exists() else None,
        weights_only=True,
    )
    trainer.save_checkpoint(last)  # the final state, whatever checkpoint_every was
