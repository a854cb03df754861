"""`regionedit pipeline`: dvc.yaml's stages as Prefect tasks that DVC skips when up to date."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from typer.testing import CliRunner

from flows.cli import app
from flows.pipeline import StageFailed, pipeline_flow, pipeline_stages
from tests.conftest import ROOT, set_params, set_small_world, sh


def stage_table(flow_run_id) -> list[dict]:
    """The table artifact a pipeline run leaves for the Prefect UI."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    [table] = [a for a in artifacts if a.key == "pipeline-stages"]
    return json.loads(table.data) if isinstance(table.data, str) else table.data


def task_run_names(flow_run_id) -> list[str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return sorted(run.name for run in runs)


def test_stage_order_follows_dvc_dependencies():
    stages = pipeline_stages(ROOT)
    position = {stage: i for i, stage in enumerate(stages)}
    assert stages[0] == "prepare" and stages[-1] == "report"
    for scale in ("1M", "5M"):
        assert position["describe"] < position[f"train@{scale}"]
        assert position["zoo"] < position[f"train@{scale}"]
        for benchmark in ("emu_edit", "magicbrush"):
            evaluate = f"evaluate@{scale}-{benchmark}"
            assert position[f"train@{scale}"] < position[evaluate] < position["report"]
            assert position["benchmarks"] < position[evaluate]
    for ablation in ("no-semalign", "no-clip-structure"):  # after what it reads, before report
        ablate = position[f"ablate@{ablation}"]
        assert max(position["features"], position["benchmarks"]) < ablate < position["report"]
    assert len(stages) == len(set(stages))
    # a target brings only what it needs
    assert pipeline_stages(ROOT, ["describe"]) == ["prepare", "describe"]


@pytest.mark.slow
def test_pipeline_skips_what_is_current_and_reruns_only_readers(prefect_harness, repo):
    set_small_world(repo, world__scenes=3)
    targets = ["prepare", "benchmarks"]

    state = pipeline_flow(str(repo), targets, return_state=True)
    assert state.is_completed()
    assert [(o.stage, o.status) for o in state.result()] == [
        ("prepare", "ran"),
        ("benchmarks", "ran"),
    ]
    assert task_run_names(state.state_details.flow_run_id) == ["benchmarks", "prepare"]
    table = stage_table(state.state_details.flow_run_id)
    assert [(row["stage"], row["status"]) for row in table] == [
        ("prepare", "ran"),
        ("benchmarks", "ran"),
    ]
    assert json.loads((repo / "metrics/prepare.json").read_text())["accepted"] == 3

    again = pipeline_flow(str(repo), targets)
    assert [o.status for o in again] == ["up to date", "up to date"]

    set_params(repo, world__scenes=4)  # read by prepare only
    third = pipeline_flow(str(repo), targets)
    assert [(o.stage, o.status) for o in third] == [
        ("prepare", "ran"),
        ("benchmarks", "up to date"),
    ]
    assert json.loads((repo / "metrics/prepare.json").read_text())["accepted"] == 4
    # both entry points agree: DVC sees nothing left to do, and dvc.lock records the new run
    assert "didn't change" in sh(repo, "dvc", "repro", "--single-item", "prepare").stdout
    assert "scenes: 4" in (repo / "dvc.lock").read_text()


@pytest.mark.slow
def test_failed_stage_is_named_with_its_log_and_the_next_run_recovers(prefect_harness, repo):
    set_small_world(repo, world__scenes=2, prepare__source="no/such/folder")

    state = pipeline_flow(str(repo), ["describe"], return_state=True)
    assert state.is_failed()
    assert "stage prepare failed" in state.message
    assert "no/such/folder" in state.message  # the end of the stage's log, in the flow run
    assert task_run_names(state.state_details.flow_run_id) == ["prepare"]  # describe not started
    logs = list((repo / "logs/pipeline").glob("*/prepare.log"))
    assert len(logs) == 1 and "no/such/folder" in logs[0].read_text()
    with pytest.raises(StageFailed):
        state.result()

    set_params(repo, prepare__source="world")
    outcomes = pipeline_flow(str(repo), ["describe"])
    assert [(o.stage, o.status) for o in outcomes] == [("prepare", "ran"), ("describe", "ran")]
    described = json.loads((repo / "metrics/describe.json").read_text())
    assert described["described"] == 2
    assert sh(repo, "dvc", "status", "describe").stdout.strip().endswith("up to date.")


def test_cli_pipeline_reports_each_stage(repo):
    set_small_world(repo, world__scenes=1)
    done = sh(repo, "regionedit", "pipeline", "--target", "benchmarks")
    assert done.stdout.split()[:2] == ["benchmarks", "ran"]
    assert Path(repo / "data/benchmarks/magicbrush").is_dir()


def test_use_profile_writes_a_valid_profile_and_lists_what_changed(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text())
    paper = ROOT / "infra/profiles/paper.yaml"
    done = CliRunner().invoke(app, ["use-profile", str(paper), "--params", str(params)])
    assert done.exit_code == 0, done.output
    assert params.read_text() == paper.read_text()
    assert "models.clip: 'local-dir:models/world/clip' -> 'ViT-L-14'" in done.output
    assert "train.batch_size: 8 -> 32" in done.output

    broken = tmp_path / "broken.yaml"
    broken.write_text("train:\n  batch_size: many\n")
    refused = CliRunner().invoke(app, ["use-profile", str(broken), "--params", str(params)])
    assert refused.exit_code == 2 and "batch_size" in refused.output
    assert params.read_text() == paper.read_text()  # left as it was
