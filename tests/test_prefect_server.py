"""`regionedit serve` against a real Prefect server on loopback: a scheduled deployment whose
triggered run completes with one task run per stage."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.conftest import (
    background,
    free_port,
    http_server,
    scripts_env,
    set_small_world,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    env = scripts_env(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
    )
    env.pop("PREFECT_API_URL", None)
    url = f"http://127.0.0.1:{port}/api"
    command = ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with http_server(command, f"{url}/health", tmp_path / "server.log", env=env):
        yield url


def test_serve_schedules_the_pipeline_and_a_run_completes_stage_by_stage(
    prefect_server, repo, tmp_path
):
    set_small_world(repo, world__scenes=2)
    serve = ["regionedit", "serve", "--cron", "0 3 * * *", "--name", "nightly"]
    serve += ["--target", "prepare", "--target", "benchmarks"]
    env = scripts_env(PREFECT_API_URL=prefect_server)
    with (
        background(serve, tmp_path / "serve.log", cwd=repo, env=env) as served,
        temporary_settings({PREFECT_API_URL: prefect_server}),
        get_client(sync_client=True) as client,
    ):

        def deployed() -> bool:
            names = {d.name for d in client.read_deployments()}
            return "nightly" in names

        wait_until(deployed, "the served deployment")
        deployment = client.read_deployment_by_name("pipeline/nightly")
        assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * *"]
        assert deployment.parameters["targets"] == ["prepare", "benchmarks"]

        flow_run = run_deployment("pipeline/nightly", timeout=600)
        assert flow_run.state.is_completed(), flow_run.state.message
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
        )
        assert sorted(t.name for t in tasks) == ["benchmarks", "prepare"]
        assert all(t.state.is_completed() for t in tasks)
        # each stage's own flow run reported to the same server
        flows = {client.read_flow(r.flow_id).name for r in client.read_flow_runs()}
        assert {"pipeline", "prepare", "world-test-sets"} <= flows
    assert (repo / "metrics/prepare.json").is_file()
    assert (repo / "data/benchmarks/emu_edit").is_dir()
    assert served.returncode is not None


def test_work_pool_deployments_of_infra_prefect_yaml_run_on_a_worker(prefect_server, repo):
    env = scripts_env(PREFECT_API_URL=prefect_server, REGIONEDIT_HOME=str(repo))
    prefect = ["prefect", "--no-prompt"]
    for command in (
        ["work-pool", "create", "regionedit", "--type", "process"],
        ["deploy", "--prefect-file", "infra/prefect.yaml", "--all"],
        ["deployment", "run", "pipeline/on-demand", "--param", 'targets=["benchmarks"]'],
        ["worker", "start", "--pool", "regionedit", "--run-once"],
    ):
        done = subprocess.run(prefect + command, cwd=repo, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    with temporary_settings({PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as c:
        nightly = c.read_deployment_by_name("pipeline/nightly")
        assert [s.schedule.cron for s in nightly.schedules] == ["0 3 * * *"]
        assert nightly.work_pool_name == "regionedit"
        on_demand = c.read_deployment_by_name("pipeline/on-demand")
        runs = [r for r in c.read_flow_runs() if r.deployment_id == on_demand.id]
        assert len(runs) == 1 and runs[0].state.is_completed(), runs[0].state
    assert (repo / "data/benchmarks/emu_edit").is_dir()  # the run worked in $REGIONEDIT_HOME


def test_serve_refuses_without_a_server(repo):
    env = scripts_env()
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run(
        ["regionedit", "serve", "--cron", "0 3 * * *"],
        cwd=repo,
        env=env | {"PREFECT_HOME": str(repo / ".prefect-home")},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "prefect server start" in done.stderr and "PREFECT_API_URL" in done.stderr
