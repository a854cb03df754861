"""The Prefect flows of the pipeline, one module per stage family, and the `regionedit` CLI.

Prefect reads its settings once, when it is first imported; these are set here, before any
flow module imports it, so that every `regionedit` process gets them without the user's
environment having to say so (an environment that sets them wins)."""

import os

# Offline machines: the ephemeral Prefect server's telemetry heartbeat would fail loudly.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Without PREFECT_API_URL each stage starts a temporary server and waits for its health check;
# Prefect's 20 s is too short on a busy laptop or CI box (docs/orchestration.md), and a stage
# that has nothing wrong with it must not fail for a slow start.
EPHEMERAL_STARTUP_TIMEOUT_S = 120
os.environ.setdefault(
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(EPHEMERAL_STARTUP_TIMEOUT_S)
)
