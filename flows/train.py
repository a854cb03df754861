"""Prefect flow for `train`: one task per scale; each launches `fit_scale` in this process or,
for several processes, under torchrun in a subprocess (Lightning's own DDP launcher would re-run
this flow in every rank: DESIGN §6). MLflow is driven from here: ranks only log metrics."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from prefect import flow, get_run_logger, task
from safetensors.torch import save_file

from components.config import Params
from components.features.index import FeatureCache, cache_settings
from components.tracking import configure_tracking
from components.training.fit import COMPUTE, LAST, ScaleRun
from components.training.launch import launch
from components.training.module import head_weights, skipped_samples
from components.training.outputs import HEAD_FILE, RUN_FILE
from components.training.tracking import (
    data_version,
    digest,
    git_commit,
    register_head,
    start_scale_run,
    sweep_run,
    training_config,
)


@task(name="train-scale")
def train_scale(
    params: Params,
    scale: str,
    prepared: Path,
    descriptions: Path,
    checkpoints: Path,
    metrics: Path,
    loss_curve: Path,
    resume: bool,
    features: Path | None = None,
) -> dict:
    logger = get_run_logger()
    version = data_version(prepared)
    if features is not None:  # the cache is part of the data: a new one is not resumed into
        cache = FeatureCache(features, cache_settings(params.models, params.method))
        version = f"{version}+features:{cache.version}"
    uri = configure_tracking(params.tracking)
    client = MlflowClient(uri)
    experiment = mlflow.get_experiment_by_name(params.tracking.experiment).experiment_id
    config = training_config(params, scale, version)
    sweep = digest({key: value for key, value in config.items() if key not in ("scale", "count")})
    folder = checkpoints / scale
    previous = _previous_run(folder, digest(config), client) if resume else None
    if previous is None:
        shutil.rmtree(folder, ignore_errors=True)
        loss_curve.unlink(missing_ok=True)
        parent = sweep_run(client, experiment, sweep)
        run_id = start_scale_run(
            client,
            experiment,
            parent,
            sweep,
            params,
            scale,
            {"git_commit": git_commit(), "data_version": version},
        )
        folder.mkdir(parents=True)
        (folder / RUN_FILE).write_text(json.dumps({"config": digest(config), "run_id": run_id}))
    else:
        run_id = previous
        logger.info("resuming scale %s from %s (MLflow run %s)", scale, folder / LAST, run_id)
    run = ScaleRun(scale, prepared, descriptions, folder, loss_curve, run_id, uri, features)
    launch(params, run, resume=previous is not None)
    return _finish(client, run, metrics, params.scales[scale], params.ablation)


def _previous_run(folder: Path, config: str, client: MlflowClient) -> str | None:
    """The MLflow run to continue: same config, a checkpoint to resume from, and the run still
    in the tracking store (a new or emptied store starts the scale over, with a warning)."""
    record = folder / RUN_FILE
    if not (record.is_file() and (folder / LAST).is_file()):
        return None
    saved = json.loads(record.read_text())
    if saved["config"] != config:
        return None
    try:
        client.get_run(saved["run_id"])
    except MlflowException:
        get_run_logger().warning(
            "%s names MLflow run %s, which the tracking store does not have: starting over",
            record,
            saved["run_id"],
        )
        return None
    return saved["run_id"]


def _finish(
    client: MlflowClient, run: ScaleRun, metrics: Path, count: int, ablation: str | None
) -> dict:
    """Head weights, artifacts, the registered version, and the final losses for DVC."""
    save_file(head_weights(run.folder / LAST), run.folder / HEAD_FILE)
    client.log_artifact(run.run_id, str(run.folder / HEAD_FILE), "head")
    client.log_artifact(run.run_id, str(run.folder / LAST), "checkpoint")
    version = register_head(client, run.run_id, "head", run.scale, ablation)
    parent = client.get_run(run.run_id).data.tags[MLFLOW_PARENT_RUN_ID]
    with run.loss_curve.open(newline="") as handle:
        final = list(csv.DictReader(handle))[-1]
    summary = {name: float(value) for name, value in final.items()}
    summary["step"] = int(summary["step"])
    summary["compute"] = json.loads((run.folder / COMPUTE).read_text())
    summary["data"] = {"skipped_samples": skipped_samples(run.folder / LAST)}  # unreadable
    client.log_metric(run.run_id, "data/skipped_samples", summary["data"]["skipped_samples"])
    # the sweep's run gathers one point per scale (step = its sample count): a scaling curve
    client.log_metric(parent, "final/total", summary["total"], step=count)
    client.set_terminated(parent)
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps(summary, indent=2) + "\n")  # no MLflow state: reproducible
    return summary | {"model_version": int(version)}


@flow(name="train")
def train_flow(
    params: Params,
    scales: list[str],
    prepared: Path,
    descriptions: Path,
    metrics_dir: Path,
    plots_dir: Path,
    resume: bool = True,
    features: Path | None = None,
) -> dict[str, dict]:
    """Train the region head once per scale; every scale is a child run of one sweep. With
    `features` (the `features` stage's folder), steps read the cached frozen features."""
    results = {}
    for scale in scales:
        results[scale] = train_scale(
            params,
            scale,
            prepared,
            descriptions,
            Path(params.train.out),
            metrics_dir / f"{scale}.json",
            plots_dir / f"{scale}.csv",
            resume,
            features,
        )
        get_run_logger().info(
            "scale %s: step %d, L_total %.4f",
            scale,
            results[scale]["step"],
            results[scale]["total"],
        )
    return results
