"""The server-backed mode: a real `mlflow server` behind basic auth on loopback (started by the
same infra/mlflow/serve.sh the compose file runs), and the pipeline logging to it over HTTP
with nothing changed but environment variables."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import (
    ROOT,
    free_port,
    http_server,
    http_status,
    scripts_env,
    set_params,
    set_small_world,
    sh,
)

pytestmark = pytest.mark.slow

ADMIN, PASSWORD = "ops", "a-long-test-password"


@pytest.fixture
def mlflow_server(tmp_path: Path):
    port = free_port()
    env = scripts_env(
        MLFLOW_AUTH_ADMIN_USERNAME=ADMIN,
        MLFLOW_AUTH_ADMIN_PASSWORD=PASSWORD,
        MLFLOW_FLASK_SERVER_SECRET_KEY="test-only-secret",
        MLFLOW_BACKEND_STORE_URI=f"sqlite:///{tmp_path / 'runs.db'}",
        MLFLOW_AUTH_DATABASE_URI=f"sqlite:///{tmp_path / 'users.db'}",
        MLFLOW_ARTIFACTS_DESTINATION=str(tmp_path / "artifacts"),
        MLFLOW_HOST="127.0.0.1",
        MLFLOW_PORT=str(port),
        MLFLOW_WORKERS="1",
    )
    url = f"http://127.0.0.1:{port}"
    serve = [str(ROOT / "infra/mlflow/serve.sh")]
    with http_server(serve, f"{url}/health", tmp_path / "mlflow.log", cwd=tmp_path, env=env):
        yield url


def test_serve_script_refuses_to_start_without_credentials(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [str(ROOT / "infra/mlflow/serve.sh")], env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "MLFLOW_AUTH_ADMIN_USERNAME" in done.stderr


def test_pipeline_logs_to_an_authenticated_server_over_http(mlflow_server, repo, monkeypatch):
    anonymous = http_status(f"{mlflow_server}/api/2.0/mlflow/experiments/search?max_results=1")
    assert anonymous == 401

    set_small_world(repo, world__scenes=3, evaluate__limit=2)
    set_params(repo, train__max_steps=2, train__batch_size=2, train__checkpoint_every=2)
    set_params(repo, train__image_every=2)
    credentials = {
        "MLFLOW_TRACKING_URI": mlflow_server,
        "MLFLOW_TRACKING_USERNAME": ADMIN,
        "MLFLOW_TRACKING_PASSWORD": PASSWORD,
    }
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    sh(repo, "regionedit", "pipeline", "--target", "evaluate@1M-emu_edit")
    assert not (repo / "mlflow.db").exists()  # nothing fell back to the embedded SQLite store

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("regionedit")
    runs = client.search_runs([experiment.experiment_id])
    children = [r for r in runs if r.data.tags.get("scale") == "1M"]
    assert len(children) == 1  # the evaluation logged into the training run, not a run of its own
    child = children[0]
    by_id = {r.info.run_id: r for r in runs}
    assert child.data.tags["mlflow.parentRunId"] in by_id  # the sweep's run
    assert len(runs) == 3 and "describe" in {r.info.run_name for r in runs}
    assert child.data.params  # flattened params
    assert any(name.startswith("eval/emu_edit/") for name in child.data.metrics)
    history = client.get_metric_history(child.info.run_id, "train/total")
    assert [m.step for m in history] == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert {"head", "checkpoint"} <= artifacts
    head = client.download_artifacts(child.info.run_id, "head")
    assert any(Path(head).glob("*.safetensors"))
    version = client.get_model_version_by_alias("region-head", "scale-1M")
    assert version.run_id == child.info.run_id
