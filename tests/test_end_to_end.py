"""The whole embedded pipeline in a fresh clone, on a small world: `regionedit pipeline` killed
during training, run again to completion; then `dvc repro` and a second `regionedit pipeline`
find nothing to do, MLflow holds one run per scale (and one pair-trained run per scale), and
every prepared sample is described exactly once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

import pandas as pd
import pytest

from flows.pipeline import pipeline_stages
from tests.conftest import ROOT, background, scripts_env, set_small_world, sh, wait_until

pytestmark = pytest.mark.slow


def test_fresh_clone_runs_end_to_end_and_a_kill_during_training_loses_nothing(tmp_path):
    clone = tmp_path / "clone"
    sh(ROOT, "git", "clone", "-q", str(ROOT), str(clone))
    set_small_world(clone)  # the default world trains its models for minutes
    env = scripts_env()
    env.pop("MLFLOW_TRACKING_URI", None)  # the embedded default: clone/mlflow.db

    first_checkpoint = clone / "checkpoints" / "1M" / "last.ckpt"
    log = tmp_path / "killed.log"
    with background(["regionedit", "pipeline"], log, cwd=clone, env=env) as killed:
        wait_until(lambda: first_checkpoint.is_file() or killed.poll() is not None, "training", 900)
        assert killed.poll() is None, log.read_text()
        os.killpg(killed.pid, signal.SIGKILL)  # the whole tree: flow, dvc, the stage's trainer
        killed.wait(30)
    assert not (clone / "metrics" / "train" / "1M.json").exists()  # killed before it finished

    start = time.monotonic()
    rerun = subprocess.run(
        ["regionedit", "pipeline"], cwd=clone, env=env, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    print(f"pipeline after the kill: {time.monotonic() - start:.0f} s")
    statuses = dict(line.split()[:2] for line in rerun.stdout.splitlines() if line.strip())
    assert statuses["train@1M"] == "ran"  # resumed from its last checkpoint
    done_before = ("prepare", "zoo", "world-release", "describe", "features")
    assert all(statuses[stage] == "up" for stage in done_before)
    assert list(statuses) == pipeline_stages(clone)  # every stage, each once

    nothing = sh(clone, "dvc", "repro").stdout
    assert "Data and pipelines are up to date" in nothing, nothing
    assert "up to date" in sh(clone, "dvc", "status").stdout
    again = sh(clone, "regionedit", "pipeline").stdout.splitlines()
    assert again and all(line.split()[1:4] == ["up", "to", "date"] for line in again)

    with sqlite3.connect(clone / "mlflow.db") as db:
        runs = db.execute(
            "SELECT scale.value, ablation.value FROM tags scale JOIN tags ablation "
            "ON scale.run_uuid = ablation.run_uuid "
            "WHERE scale.key = 'scale' AND ablation.key = 'ablation'"
        ).fetchall()
        sweeps = db.execute(
            "SELECT COUNT(DISTINCT value) FROM tags WHERE key = 'mlflow.parentRunId'"
        ).fetchone()[0]
        aliases = dict(db.execute("SELECT alias, version FROM registered_model_aliases"))
        by_data = db.execute(
            "SELECT data.value, scale.value FROM tags data JOIN tags scale "
            "ON data.run_uuid = scale.run_uuid "
            "WHERE data.key = 'training_data' AND scale.key = 'scale'"
        ).fetchall()
    scales = sorted(scale for scale, ablation in runs if ablation == "none")
    assert scales == ["1M", "2M", "3M", "4M", "5M"]  # the killed run was resumed, once
    assert [run for run in runs if run[1] != "none"] == [("1M", "no-clip")]  # SMALL_WORLD's
    assert sweeps == 2  # the scales' sweep and the ablation's (another method: another sweep)
    assert aliases["ablation-no-clip"] != aliases["scale-1M"]  # the scale's alias stays put
    pair_trained = sorted(scale for data, scale in by_data if data == "editing pairs")
    assert pair_trained == scales  # one pair-trained run per scale, beside ours

    manifest = pd.read_parquet(clone / "data/prepared/manifest.parquet")
    described = pd.read_parquet(clone / "data/descriptions/descriptions.parquet")
    assert described["key"].is_unique and set(described["key"]) == set(manifest["key"])
    tables = (clone / "reports" / "tables.md").read_text()
    assert "5M" in tables and (clone / "reports" / "scaling.png").stat().st_size > 0
    ablated = json.loads((clone / "metrics/ablations/no-clip/emu_edit.json").read_text())
    assert ablated["ablation"] == {"name": "no-clip", "zeroed": ["beta"]}
    assert "ours, w/o L_CLIP (default profile, 2 training samples" in tables
    assert "## Trained without editing pairs against trained on them" in tables
    assert (clone / "reports" / "pairs.png").stat().st_size > 0
    prepared = json.loads((clone / "metrics" / "prepare.json").read_text())
    assert prepared["accepted"] == len(manifest)
