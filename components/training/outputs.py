"""Where a scale's training leaves its head and its MLflow run, for whoever reads them next
(the evaluation, the pair-trained comparison)."""

from __future__ import annotations

import json
from pathlib import Path

from components.config import Params

RUN_FILE = "run.json"  # in a scale's checkpoint folder: which config and MLflow run it belongs to
HEAD_FILE = "head.safetensors"  # the head's weights, what Editor.from_params(checkpoint=) reads


def trained_head(params: Params, scale: str) -> Path | None:
    """The scale's head.safetensors, once its training has written it."""
    head = Path(params.train.out) / scale / HEAD_FILE
    return head if head.is_file() else None


def scale_run_id(params: Params, scale: str) -> str | None:
    """The MLflow run of the scale's training, if it has one."""
    record = Path(params.train.out) / scale / RUN_FILE
    return json.loads(record.read_text())["run_id"] if record.is_file() else None
