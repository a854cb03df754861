"""The Prefect flows of the pipeline, one module per stage family, and the `regionedit` CLI.

Prefect reads its settings once, when it is first imported; these are set here, before any
flow module imports it, so that every `regionedit` process gets them without the user's
environment having to say so (an environment that sets them wins)."""

import os

# Offline machines: the ephemeral Prefect server's telemetry heartbeat would fail loudly.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Without PREFECT_API_URL the stages share a temporary server (flows/shared_server.py) that the
# first one starts and waits for, this long: Prefect's 20 s is too short on a busy laptop or
# CI box (docs/orchestration.md), and a stage with nothing wrong must not fail for a slow start.
EPHEMERAL_STARTUP_TIMEOUT_S = 120
os.environ.setdefault(
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(EPHEMERAL_STARTUP_TIMEOUT_S)
)
