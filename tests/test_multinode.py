"""Multi-node DDP as infra/launch runs it: this process is node 0 (the train stage), and a second
"node" joins with infra/launch/torchrun_node.sh; both on loopback, gloo on CPU."""

from __future__ import annotations

import json

import pytest

from components.training.launch import multi_node_rendezvous
from flows.train import train_flow
from tests.conftest import ROOT, background, free_port, scripts_env
from tests.test_training import training_params, write_training_data

pytestmark = pytest.mark.slow


@pytest.fixture
def data(tmp_path):
    return write_training_data(tmp_path / "data")


def test_a_second_node_joins_the_training_run(
    zoo_params, data, tmp_path, prefect_harness, monkeypatch
):
    params = training_params(
        zoo_params, tmp_path, devices=1, num_nodes=2, strategy="ddp", max_steps=3
    )
    port = str(free_port())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", port)
    join = [str(ROOT / "infra/launch/torchrun_node.sh"), "2M"]
    env = scripts_env(
        NODE_RANK="1",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=port,
        TRAIN_OUT=str(tmp_path / "checkpoints"),
        POLL_SECONDS="0.2",
    )
    log = tmp_path / "node-1.log"
    with background(join, log, cwd=ROOT, env=env) as node:
        train_flow(params, ["2M"], *data, tmp_path / "metrics", tmp_path / "plots")
        assert node.wait(120) == 0, log.read_text()
    folder = tmp_path / "checkpoints" / "2M"
    reports = [json.loads(p.read_text()) for p in sorted((folder / "ranks").glob("rank-*.json"))]
    assert [r["rank"] for r in reports] == [0, 1] and {r["world_size"] for r in reports} == {2}
    assert [r["batches"] for r in reports] == [3, 3]
    assert reports[0]["head_sha256"] == reports[1]["head_sha256"]
    assert not (folder / "launch.json").exists()  # nothing left for a later node to join
    assert json.loads((tmp_path / "metrics" / "2M.json").read_text())["step"] == 3


def test_more_than_one_node_needs_the_head_address(monkeypatch):
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(RuntimeError, match="MASTER_ADDR"):
        multi_node_rendezvous()
