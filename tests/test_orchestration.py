"""Orchestration without a configured Prefect API: the stages of a run share one temporary
server (flows/shared_server.py), a slow start-up does not fail a stage, and the server stops
once nobody leases it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import prefect
from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings
from prefect.settings.models.server.ephemeral import ServerEphemeralSettings

from flows import EPHEMERAL_STARTUP_TIMEOUT_S
from flows.shared_server import IDLE_S, _healthy, orchestration
from tests.conftest import ROOT, scripts_env, wait_until

PREFECT_DEFAULT_S = ServerEphemeralSettings.model_fields["startup_timeout_seconds"].default
DELAY_S = PREFECT_DEFAULT_S + 5  # a start-up Prefect's default would have given up on
STARTED = "starting a temporary server shared by stages"


def _record(home: Path) -> dict:
    return json.loads((home / f"regionedit-server-{prefect.__version__}.json").read_text())


def _stage(tmp_path: Path, out: str, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    """`regionedit world` (a small flow) with no Prefect API configured, and its wall time."""
    environment = scripts_env(**env)
    for name in ("PREFECT_API_URL", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"):
        environment.pop(name, None)  # the temporary server, under the project's own setting
    command = ["regionedit", "world", "--count", "2", "--out", str(tmp_path / out)]
    start = time.monotonic()
    done = subprocess.run(
        [*command, "--params", str(ROOT / "params.yaml")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert json.loads((tmp_path / out / "world.json").read_text())["magicbrush"]["sessions"] == 2
    return done, time.monotonic() - start


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def test_a_stage_completes_when_its_temporary_server_starts_slower_than_prefects_default(
    tmp_path,
):
    assert DELAY_S < EPHEMERAL_STARTUP_TIMEOUT_S
    slow = tmp_path / "slow-start"
    slow.mkdir()  # imported by every Python process that starts with it on PYTHONPATH
    (slow / "sitecustomize.py").write_text(
        f"import sys, time\nif 'flows.shared_server' in sys.orig_argv:\n    time.sleep({DELAY_S})\n"
    )
    home = tmp_path / "prefect-home"
    done, elapsed = _stage(tmp_path, "world", PYTHONPATH=str(slow), PREFECT_HOME=str(home))
    try:
        assert STARTED in done.stderr
        assert elapsed > DELAY_S  # the server really was that slow, and the stage waited for it
    finally:
        _stop(_record(home)["pid"])


def test_the_stages_of_a_run_share_one_temporary_server(tmp_path):
    home = tmp_path / "prefect-home"
    first, first_s = _stage(tmp_path, "a", PREFECT_HOME=str(home))
    server = _record(home)
    try:
        second, second_s = _stage(tmp_path, "b", PREFECT_HOME=str(home))
        assert STARTED in first.stderr and STARTED not in second.stderr
        assert _record(home) == server  # the second stage reported to the first one's server
        print(f"stage with a server start {first_s:.1f} s, sharing it {second_s:.1f} s")
    finally:
        _stop(server["pid"])


def test_the_server_outlives_idle_time_while_leased_and_stops_once_released(tmp_path, monkeypatch):
    idle_s = 1.0
    assert idle_s < IDLE_S  # the test's setting, far shorter than a run's gaps between stages
    monkeypatch.setenv("REGIONEDIT_SHARED_SERVER_IDLE_S", str(idle_s))  # read by the server
    home = tmp_path / "prefect-home"
    with temporary_settings({PREFECT_HOME: home}, restore_defaults={PREFECT_API_URL}):
        with orchestration() as api:
            assert PREFECT_API_URL.value() == api  # what this block's flows report to
            time.sleep(idle_s * 6)  # several watchdog rounds past the idle time
            assert _healthy(api)
        pid = _record(home)["pid"]
    wait_until(lambda: _exited(pid), "the released server's exit", 30)  # asks it nothing
    record = home / f"regionedit-server-{prefect.__version__}.json"
    assert not record.exists()  # no later stage picks up a stopped server
    assert not _healthy(api)


def _exited(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text()  # not reaped yet: exited
    except FileNotFoundError:
        return True
