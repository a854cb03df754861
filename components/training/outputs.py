"""Where a scale's training leaves its head and its MLflow run, for whoever reads them next
(the evaluation, the pair-trained comparison)."""

from __future__ import annotations

import json
from pathlib import Path

from components.config import Params

RUN_FILE = "run.json"  # in a scale's checkpoint folder: which config and MLflow run it belongs to
HEAD_FILE = "head.safetensors"  # the head's weights, what Editor.from_params(checkpoint=) reads
NO_TRAINED_HEAD = (
    "no trained head found (run `dvc repro` or pass --checkpoint): "
    "editing with an untrained, seeded head"
)  # the words `regionedit edit` and `regionedit demo` warn with


def trained_head(params: Params, scale: str) -> Path | None:
    """The scale's head.safetensors, once its training has written it."""
    head = Path(params.train.out) / scale / HEAD_FILE
    return head if head.is_file() else None


def trained_heads(params: Params) -> dict[str, Path | None]:
    """Every scale's head.safetensors, None where its training has not written one."""
    return {scale: trained_head(params, scale) for scale in params.scales}


def largest_trained_head(params: Params) -> Path | None:
    """head.safetensors of the largest scale that has one, if any."""
    heads = (trained_head(params, scale) for scale in reversed(list(params.scales)))
    return next((head for head in heads if head is not None), None)


def scale_run_id(params: Params, scale: str) -> str | None:
    """The MLflow run of the scale's training, if it has one."""
    record = Path(params.train.out) / scale / RUN_FILE
    return json.loads(record.read_text())["run_id"] if record.is_file() else None


def summary_line(scale: str, summary: dict) -> str:
    """One line of a scale's training summary (what `train` prints)."""
    return (
        f"train {scale}: step {summary['step']} · L_total {summary['total']:.4f} · "
        f"region-head version {summary['model_version']}"
    )
