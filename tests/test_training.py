"""Training through its real entry points: one step, 2-process DDP, kill and resume, MLflow."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from components.data.demo import demo_records
from components.data.images import ImageLimits
from components.data.prepare import prepare_dataset
from components.method.build import build_region_edit_model
from components.training.fit import LAST, ScaleRun, fit_scale
from flows.cli import app
from flows.train import train_flow

SHARD_SIZE = 7  # 21 photos + 8 scenes = 29 samples: shards of 7, 7, 7, 7 and 1


def write_training_data(root: Path) -> tuple[Path, Path]:
    """Prepared demo shards (uneven) and a description per sample."""
    prepare_dataset(
        demo_records(scenes=8, seed=0),
        root / "prepared",
        ImageLimits(64, 10**8),
        SHARD_SIZE,
        workers=1,
        progress=False,
    )
    manifest = pd.read_parquet(root / "prepared" / "manifest.parquet")
    descriptions = pd.DataFrame(
        {
            "key": manifest.key,
            "shard": manifest.shard,
            "t_o": manifest.caption,
            "t_ins": "make it blue",
            "t_e": manifest.caption + ", in blue",
            "status": "ok",
        }
    )
    descriptions.to_parquet(root / "descriptions.parquet")
    return root / "prepared", root / "descriptions.parquet"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    return write_training_data(tmp_path_factory.mktemp("training-data"))


def training_params(zoo_params, out: Path, **train):
    defaults = {
        "max_steps": 4,
        "batch_size": 2,
        "checkpoint_every": 2,
        "image_every": 2,
        "out": str(out / "checkpoints"),
    }
    return zoo_params.model_copy(
        update={
            "scales": {"1M": 4, "2M": 8},
            "train": zoo_params.train.model_copy(update=defaults | train),
        }
    )


@pytest.fixture
def tracking(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return uri


def run(tmp_path: Path, data, scale: str = "1M") -> ScaleRun:
    return ScaleRun(
        scale,
        data[0],
        data[1],
        tmp_path / "checkpoints" / scale,
        tmp_path / "plots" / f"{scale}.csv",
        run_id=None,
        tracking_uri=None,
    )


def loss_steps(path: Path) -> list[int]:
    return list(pd.read_csv(path)["step"])


def test_one_step(zoo_params, data, tmp_path):
    scale = run(tmp_path, data)
    fit_scale(training_params(zoo_params, tmp_path, max_steps=1), scale, resume=False)
    assert (scale.folder / LAST).is_file()
    assert loss_steps(scale.loss_curve) == [1]
    report = json.loads((scale.folder / "ranks" / "rank-0.json").read_text())
    assert report["batches"] == 1 and report["global_step"] == 1


def test_gradient_clipping_bounds_the_update_and_the_norm_before_it_is_logged(
    zoo_params, data, tmp_path
):
    params = training_params(zoo_params, tmp_path, max_steps=1, gradient_clip_val=1e-12)
    scale = run(tmp_path, data)
    fit_scale(params, scale, resume=False)
    torch.manual_seed(params.seed)  # the fresh head fit_scale starts from
    start = build_region_edit_model(params.models, params.method).head.state_dict()
    trained = torch.load(scale.folder / LAST, weights_only=True)["state_dict"]
    moved = max(
        (trained[f"model.head.{name}"] - value).abs().max().item() for name, value in start.items()
    )
    # AdamW's first step moves every parameter by about lr (1e-4) whatever the gradient's
    # size, unless the clipped gradient is far below its eps (1e-8): clipping was applied
    assert moved < 1e-6
    curve = pd.read_csv(scale.loss_curve)
    assert curve["grad_norm"].iloc[0] > 1e-6  # the norm before clipping
    assert {"clip_direction_floored", "empty_masks"} <= set(curve.columns)


def test_equal_epochs_train_each_scale_in_proportion_and_mlflow_says_what_ran(
    zoo_params, data, tmp_path, tracking, prefect_harness
):
    params = training_params(
        zoo_params, tmp_path, length="epochs", epochs=2.0, max_steps=99, checkpoint_every=50
    )
    train_flow(params, ["1M", "2M"], *data, tmp_path / "metrics", tmp_path / "plots")
    steps = {
        s: json.loads((tmp_path / "metrics" / f"{s}.json").read_text())["step"]
        for s in ("1M", "2M")
    }
    assert steps == {"1M": 4, "2M": 8}  # 2 epochs of 4 and 8 samples at batch 2
    compute = {
        s: json.loads((tmp_path / "metrics" / f"{s}.json").read_text())["compute"]
        for s in ("1M", "2M")
    }
    assert compute["1M"]["samples_seen"] == 8 and compute["2M"]["samples_seen"] == 16
    per_sample = compute["1M"]["flops_per_sample"]  # the same step at every scale
    assert per_sample > 0 and compute["2M"]["flops_per_sample"] == per_sample
    assert compute["2M"]["train_tflop"] == pytest.approx(2 * compute["1M"]["train_tflop"])
    runs = mlflow.search_runs(
        experiment_names=[params.tracking.experiment],
        filter_string="tags.`regionedit.role` = 'scale'",
    )
    by_scale = {row["tags.scale"]: row for _, row in runs.iterrows()}
    assert by_scale["1M"]["params.scale_steps"] == "4"
    assert by_scale["2M"]["params.scale_steps"] == "8"
    assert by_scale["2M"]["params.scale_epochs"] == "2"
    assert by_scale["1M"]["tags.mlflow.runName"] == (
        "train 1M: default profile, 4 training samples, random models"
    )
    assert by_scale["1M"]["tags.training_samples"] == "4"
    assert by_scale["1M"]["tags.generator"] == "sd"  # read from models.inpainting's folder
    assert by_scale["1M"]["tags.training_data"] == "text-image pairs"  # beside the pair-trained
    assert "metrics.train/grad_norm" in runs.columns
    assert by_scale["1M"]["metrics.compute/flops_per_sample"] == per_sample


@pytest.mark.slow
def test_two_process_ddp_on_cpu(zoo_params, data, tmp_path, tracking, prefect_harness):
    params = training_params(zoo_params, tmp_path, devices=2, strategy="ddp", max_steps=3)
    train_flow(params, ["2M"], *data, tmp_path / "metrics", tmp_path / "plots")
    reports = [
        json.loads(p.read_text())
        for p in sorted((tmp_path / "checkpoints" / "2M" / "ranks").glob("rank-*.json"))
    ]
    assert [r["rank"] for r in reports] == [0, 1] and {r["world_size"] for r in reports} == {2}
    # 8 samples in uneven shards, and still the same number of batches on every rank
    assert [r["batches"] for r in reports] == [3, 3]
    assert reports[0]["head_sha256"] == reports[1]["head_sha256"]  # DDP kept the heads equal
    summary = json.loads((tmp_path / "metrics" / "2M.json").read_text())
    assert summary["step"] == 3
    assert summary["compute"]["samples_seen"] == 3 * 2 * 2  # steps x batch x ranks


@pytest.mark.slow
def test_killed_run_resumes_into_the_same_mlflow_run(zoo_params, data, tmp_path, tracking):
    params_file = tmp_path / "params.yaml"
    params = training_params(zoo_params, tmp_path, max_steps=30, checkpoint_every=2)
    params_file.write_text(yaml.safe_dump(params.model_dump(mode="json")))
    command = [
        str(Path(sys.executable).parent / "regionedit"),
        "train",
        "--scale",
        "1M",
        "--params",
        str(params_file),
        "--prepared",
        str(data[0]),
        "--descriptions",
        str(data[1]),
        "--metrics",
        str(tmp_path / "metrics"),
        "--plots",
        str(tmp_path / "plots"),
    ]
    last = tmp_path / "checkpoints" / "1M" / LAST
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the whole group: Prefect's server too
    process.wait()
    killed_at = torch.load(last, weights_only=True)["global_step"]
    assert 0 < killed_at < 30 and not (tmp_path / "metrics" / "1M.json").exists()

    resumed = CliRunner().invoke(app, command[1:])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((tmp_path / "metrics" / "1M.json").read_text())["step"] == 30
    assert loss_steps(tmp_path / "plots" / "1M.csv") == list(range(1, 31))  # each step once
    children = mlflow.search_runs(
        experiment_names=[params.tracking.experiment], filter_string="tags.scale = '1M'"
    )
    assert len(children) == 1
    history = mlflow.MlflowClient().get_metric_history(children.run_id[0], "train/total")
    assert sorted({m.step for m in history}) == list(range(1, 31))  # as in the CSV

    # a checkpoint whose MLflow run the store does not have (a new store): start over, not crash
    record = tmp_path / "checkpoints" / "1M" / "run.json"
    record.write_text(json.dumps(json.loads(record.read_text()) | {"run_id": "0" * 32}))
    again = CliRunner().invoke(app, command[1:])
    assert again.exit_code == 0, again.output
    children = mlflow.search_runs(
        experiment_names=[params.tracking.experiment], filter_string="tags.scale = '1M'"
    )
    assert len(children) == 2  # a new run, from step 1
    assert loss_steps(tmp_path / "plots" / "1M.csv") == list(range(1, 31))


@pytest.mark.slow
def test_two_scales_are_two_child_runs_of_one_sweep_and_learning_happens(
    zoo_params, data, tmp_path, tracking, prefect_harness
):
    params = training_params(
        zoo_params, tmp_path, max_steps=50, batch_size=4, lr=3e-3, image_every=10
    )
    results = train_flow(params, ["1M", "2M"], *data, tmp_path / "metrics", tmp_path / "plots")
    runs = mlflow.search_runs(experiment_names=[params.tracking.experiment])
    parents = runs[runs["tags.regionedit.role"] == "sweep"]
    children = runs[runs["tags.regionedit.role"] == "scale"]
    assert len(parents) == 1 and sorted(children["tags.scale"]) == ["1M", "2M"]
    scaling = mlflow.MlflowClient().get_metric_history(parents.run_id.iloc[0], "final/total")
    assert sorted(m.step for m in scaling) == [4, 8]  # one point per scale, at its sample count
    assert set(children["tags.mlflow.parentRunId"]) == {parents.run_id.iloc[0]}
    assert children["tags.data_version"].nunique() == 1 and children["tags.git_commit"].all()
    client = mlflow.MlflowClient()
    for child in children.itertuples():
        metrics = client.get_run(child.run_id).data.metrics
        assert {
            "train/total",
            "train/sem_align",
            "train/clip_global",
            "train/clip_direction",
            "train/clip_structure",
        } <= set(metrics)
        pictures = [a.path for a in client.list_artifacts(child.run_id, "regions")]
        assert "regions/step-000010.png" in pictures
        assert [a.path for a in client.list_artifacts(child.run_id, "head")] == [
            "head/head.safetensors"
        ]
    for scale in ("1M", "2M"):
        version = client.get_model_version_by_alias("region-head", f"scale-{scale}")
        assert version.tags["scale"] == scale
        assert results[scale]["model_version"] == int(version.version)
    curve = pd.read_csv(tmp_path / "plots" / "1M.csv")["total"]
    first, last = statistics.mean(curve[:5]), statistics.mean(curve[-5:])
    print(
        f"L_total on 4 samples: first 5 steps {first:.4f}, last 5 {last:.4f}, "
        f"drop {1 - last / first:.1%}"
    )
    assert last < 0.85 * first
