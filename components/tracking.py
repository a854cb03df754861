"""MLflow setup shared by every flow: one tracking URI, one experiment."""

from __future__ import annotations

import os

import mlflow

from components.config import TrackingConfig


def configure_tracking(cfg: TrackingConfig) -> str:
    """Point MLflow at MLFLOW_TRACKING_URI if set, else `tracking.uri`; returns the URI.

    Always an explicit URI: MLflow >= 3.13 refuses the old ./mlruns file store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or cfg.uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(cfg.experiment)
    return uri
