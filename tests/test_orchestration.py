"""Orchestration on a busy machine: a stage whose temporary Prefect server is slower to come
up than Prefect's own start-up timeout still completes."""

from __future__ import annotations

import json
import subprocess
import time

from prefect.settings.models.server.ephemeral import ServerEphemeralSettings

from flows import EPHEMERAL_STARTUP_TIMEOUT_S
from tests.conftest import ROOT, scripts_env

PREFECT_DEFAULT_S = ServerEphemeralSettings.model_fields["startup_timeout_seconds"].default
DELAY_S = PREFECT_DEFAULT_S + 5  # a start-up Prefect's default would have given up on


def test_a_stage_completes_when_its_temporary_server_starts_slower_than_prefects_default(
    tmp_path,
):
    assert DELAY_S < EPHEMERAL_STARTUP_TIMEOUT_S
    slow = tmp_path / "slow-start"
    slow.mkdir()  # imported by every Python process that starts with it on PYTHONPATH
    (slow / "sitecustomize.py").write_text(
        f"import sys, time\nif 'uvicorn' in sys.orig_argv:\n    time.sleep({DELAY_S})\n"
    )
    env = scripts_env(PYTHONPATH=str(slow), PREFECT_HOME=str(tmp_path / "prefect-home"))
    for name in ("PREFECT_API_URL", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"):
        env.pop(name, None)  # a temporary server, under the project's own setting
    out = tmp_path / "world"
    command = ["regionedit", "world", "--count", "2", "--out", str(out)]
    start = time.monotonic()
    done = subprocess.run(
        [*command, "--params", str(ROOT / "params.yaml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Starting temporary server" in done.stdout + done.stderr
    assert elapsed > DELAY_S  # the server really was that slow, and the stage waited for it
    assert json.loads((out / "world.json").read_text())["magicbrush"]["sessions"] == 2
