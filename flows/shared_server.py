"""One temporary Prefect server shared by the stages of a run, when no API is configured.

Without `PREFECT_API_URL`, Prefect starts a temporary server in every process that runs a flow
and stops it when the process exits: each stage of a plain `dvc repro` would pay a server
start-up (seconds on a laptop, more on a busy one; docs/orchestration.md). Instead the first
stage starts one server in the background (`python -m flows.shared_server`, Prefect's own
ephemeral app under uvicorn: no UI, no services), records its address in PREFECT_HOME, and
every later stage reports to it. A stage holds a lease on the server while it runs (a shared
`flock`, released by the kernel however the stage ends); the server stops itself once nobody
holds the lease and no request came for IDLE_S seconds. A configured API
(`PREFECT_API_URL`, `regionedit serve`, infra/compose.yaml) is used as it is.

Two runs at once share the server too: starting, picking up and stopping it happen under one
lock file, so a stage never reports to a server that is about to stop.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import prefect
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_HOME,
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    get_current_settings,
    temporary_settings,
)

IDLE_S = float(os.environ.get("REGIONEDIT_SHARED_SERVER_IDLE_S", "60"))  # after the last lease
POLL_S = 0.2  # between health checks while the server starts, and the watchdog's rounds
LOG_TAIL = 3000  # characters of the server's log quoted when it fails to start


class ServerStartError(RuntimeError):
    """The shared server did not answer its health check in time; the message quotes its log."""


@contextmanager
def orchestration() -> Iterator[str]:
    """The Prefect API the flows of this block report to: the configured one, else the
    shared temporary server (started if none is running), leased for the block's duration."""
    configured = PREFECT_API_URL.value()
    if configured:
        yield configured
        return
    files = _Files.here()
    with files.lease() as api, temporary_settings(updates={PREFECT_API_URL: api}):
        yield api


class _Files:
    """The server's record, its lock and its lease, in PREFECT_HOME, per Prefect version (a
    server of another version's venv is not this client's)."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        stem = f"regionedit-server-{prefect.__version__}"
        self.record = home / f"{stem}.json"
        self.lock_path = home / f"{stem}.lock"
        self.lease_path = home / f"{stem}.lease"
        self.log = home / f"{stem}.log"

    @classmethod
    def here(cls) -> _Files:
        return cls(Path(PREFECT_HOME.value()).expanduser())

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self.lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def lease(self) -> Iterator[str]:
        """The running server's API (one is started if needed), leased until the block ends."""
        with self.lease_path.open("a") as lease:
            with self.locked():
                api = self._running()
                if api:
                    print(
                        f"prefect: reporting to the shared temporary server at {api}",
                        file=sys.stderr,
                    )
                else:
                    api = self._start()
                fcntl.flock(lease, fcntl.LOCK_SH)  # the server holds it only under the lock
            try:
                yield api
            finally:
                fcntl.flock(lease, fcntl.LOCK_UN)

    def _running(self) -> str | None:
        try:
            api = json.loads(self.record.read_text())["api"]
        except (OSError, ValueError, KeyError):
            return None
        return api if _healthy(api) else None

    def _start(self) -> str:
        port = _free_port()
        api = f"http://127.0.0.1:{port}/api"
        settings = get_current_settings().to_environment_variables(exclude_unset=True)
        with self.log.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "flows.shared_server", "--port", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives this stage, and a Ctrl-C meant for it
                cwd=self.record.parent,
                env=os.environ | settings,
            )
        timeout = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
        print(f"prefect: starting a temporary server shared by stages at {api}", file=sys.stderr)
        started = time.monotonic()
        deadline = started + timeout
        while not _healthy(api):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise ServerStartError(
                    f"the shared temporary Prefect server at {api} did not start within "
                    f"{timeout} s (exit {process.poll()}); its log {self.log} ends:\n"
                    + self.log.read_text()[-LOG_TAIL:]
                    + "\nSet PREFECT_API_URL to a running server to use it instead."
                )
            time.sleep(POLL_S)
        self.record.write_text(json.dumps({"api": api, "pid": process.pid}))
        print(f"prefect: ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
        return api

    def try_stop(self) -> bool:
        """True when nobody holds the lease, and this server's record is then removed (a
        newer server's stays); called under the lock."""
        with self.lease_path.open("a") as lease:
            try:
                fcntl.flock(lease, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            try:
                if json.loads(self.record.read_text())["pid"] == os.getpid():
                    self.record.unlink()
            except (OSError, ValueError, KeyError):
                pass
            fcntl.flock(lease, fcntl.LOCK_UN)
            return True


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(port: int, idle_s: float = IDLE_S) -> None:
    """Prefect's ephemeral API app on 127.0.0.1:`port` until it has been idle for `idle_s`
    with no lease held."""
    os.environ |= {"PREFECT__SERVER_EPHEMERAL": "1", "PREFECT_UI_ENABLED": "0"}
    import uvicorn
    from prefect.server.api.server import create_app

    app = create_app(ephemeral=True, final=True)
    last_request = [time.monotonic()]

    async def tracked(scope, receive, send):  # noqa: ANN001 (ASGI)
        last_request[0] = time.monotonic()
        await app(scope, receive, send)

    server = uvicorn.Server(
        uvicorn.Config(tracked, host="127.0.0.1", port=port, log_level="error", lifespan="on")
    )
    files = _Files.here()

    def watchdog() -> None:
        while not server.should_exit:
            time.sleep(POLL_S * 10)
            if time.monotonic() - last_request[0] < idle_s:
                continue
            try:
                with files.locked():
                    server.should_exit = files.try_stop()
            except OSError:  # PREFECT_HOME is gone: nobody can find this server any more
                server.should_exit = True

    threading.Thread(target=watchdog, daemon=True).start()
    server.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=serve.__doc__)
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)
