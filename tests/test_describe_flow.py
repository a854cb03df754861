"""The describe flow under a real Prefect API: tasks per shard, MLflow run, resume, the CLI."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from components.config import DescribeConfig, Params
from components.describe.errors import DescribeError
from flows.cli import app
from flows.describe import run_describe
from tests.test_describe_shards import prepare_demo


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepare_demo(tmp_path_factory.mktemp("flow") / "prepared", scenes=3, per_shard=6)


@pytest.fixture
def tracking(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def params(**describe) -> Params:
    settings = {"shards_per_task": 2, "workers": 2, "task_retries": 0} | describe
    return Params(describe=DescribeConfig(**settings))


def test_flow_describes_tracks_and_resumes_a_failed_shard(
    prepared, tmp_path, tracking, prefect_harness
):
    out = tmp_path / "out"
    first = run_describe(prepared, out, params(), tmp_path / "m.json")
    assert first.line() == "inputs 24 · described 24 · rejected 0"
    parts = sorted(p.name for p in (out / "parts").iterdir())
    assert len(parts) == 4

    (out / "parts" / parts[2]).unlink()  # as if the run had died before shard 2 finished
    (out / "descriptions.parquet").unlink()
    again = run_describe(prepared, out, params(), tmp_path / "m.json")
    assert again == first
    described = pd.read_parquet(out / "descriptions.parquet")
    manifest = pd.read_parquet(prepared / "manifest.parquet")
    assert list(described["key"]) == list(manifest["key"])
    assert json.loads((tmp_path / "m.json").read_text())["inputs"] == 24

    mlflow.set_tracking_uri(tracking)
    runs = mlflow.search_runs(experiment_names=["regionedit"], order_by=["start_time ASC"])
    assert list(runs["tags.mlflow.runName"]) == ["describe", "describe"]
    assert set(runs["params.describe.backend"]) == {"template"}
    assert list(runs["metrics.shards_reused"]) == [0, 3]
    assert list(runs["metrics.inputs"]) == [24, 24]


def test_a_shard_that_cannot_be_written_fails_the_run_and_a_rerun_finishes_it(
    prepared, tmp_path, tracking, prefect_harness
):
    out = tmp_path / "out"
    run_describe(prepared, out, params(), limit=6)  # learn the part name of shard 0
    part = next((out / "parts").iterdir())
    part.unlink()
    part.mkdir()  # a folder where the part must go: writing it fails, every time
    with pytest.raises(DescribeError, match="1 of 1 describe tasks failed.*run the same command"):
        run_describe(prepared, out, params(), limit=6)
    part.rmdir()
    assert run_describe(prepared, out, params(), limit=6).described == 6


def test_describe_command(prepared, tmp_path, tracking, prefect_harness):
    runner = CliRunner()
    settings = tmp_path / "params.yaml"
    settings.write_text("describe:\n  backend: transformers\n  task_retries: 0\n")
    command = ["describe", "--data", str(prepared), "--out", str(tmp_path / "out")]
    result = runner.invoke(
        app, [*command, "--backend", "template", "--limit", "5", "--params", str(settings)]
    )
    assert result.exit_code == 0, result.output
    assert "inputs 5 · described 5 · rejected 0" in result.output
    assert json.loads((tmp_path / "out" / "describe_metrics.json").read_text())["inputs"] == 5

    bad = runner.invoke(app, [*command, "--backend", "gpt", "--params", str(settings)])
    assert bad.exit_code == 2 and "backend" in bad.output
    missing = runner.invoke(
        app, [*command, "--data", str(tmp_path / "nowhere"), "--backend", "template"]
    )
    assert missing.exit_code == 2 and "regionedit prepare" in missing.output
