"""The one harness every evaluation goes through (ours and its baselines, the pair-trained
editors, the training-cost benchmark): which CLIP scores a benchmark, the scoring itself, the
outputs beside the scores, and the identity stamp that lets cached edits be reused."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

from components.config import Params
from components.evaluation.benchmarks import load_emu_edit, load_magicbrush
from components.evaluation.metrics import load_metric_models
from components.evaluation.run import BenchmarkResult, evaluate_emu_edit, evaluate_magicbrush
from components.pictures import comparison_grid

BENCHMARKS = ("emu_edit", "magicbrush")
IDENTITY = "identity.json"  # in an output folder: the settings its cached edits were made with

log = logging.getLogger(__name__)


def metric_clip(params: Params, benchmark: str) -> tuple[str, str | None]:
    """The CLIP that scores `benchmark`: MagicBrush's (models.metric_clip), and for Emu Edit
    evaluate.emu_edit_clip where set (which CLIP Emu Edit used is not published)."""
    models, cfg = params.models, params.evaluate
    if benchmark == "emu_edit" and cfg.emu_edit_clip is not None:
        return cfg.emu_edit_clip, cfg.emu_edit_clip_pretrained
    return models.metric_clip, models.metric_clip_pretrained


def score_systems(
    params: Params,
    benchmark: str,
    data: Path,
    systems: dict,
    grid: int | None,
    limit: int | None,
) -> BenchmarkResult:
    """`systems` on one benchmark, scored by its metric models: the one harness every
    evaluation (ours and its baselines, the pair-trained editors) goes through."""
    cfg = params.evaluate
    clip, pretrained = metric_clip(params, benchmark)
    metric_models = load_metric_models(clip, pretrained, params.models.dino)
    rows = cfg.grid_rows
    if benchmark == "emu_edit":
        cases = load_emu_edit(data, cfg.emu_edit_split, limit)
        return evaluate_emu_edit(cases, systems, metric_models, rows, grid)
    sessions = load_magicbrush(data, limit=limit, captions=cfg.magicbrush_captions)
    return evaluate_magicbrush(
        sessions, systems, metric_models, rows, grid, input_captions=cfg.magicbrush_input_captions
    )


def count_scored(result: BenchmarkResult, setting: str, system: str = "ours") -> int:
    """Scored inputs of one setting (Emu Edit's rows count as single-turn): `system`'s rows
    (ours runs in every evaluation, a loss ablation's included)."""
    return sum(
        row["system"] == system and row.get("setting", "single") == setting for row in result.rows
    )


def write_outputs(out: Path, result: BenchmarkResult) -> None:
    """samples.csv (one row per system and scored edit) and grid.png in `out`."""
    columns = list(dict.fromkeys(key for row in result.rows for key in row))
    with (out / "samples.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(result.rows)
    if result.pictures:
        comparison_grid(result.pictures).save(out / "grid.png")


def reuse_only_if_same(out: Path, identity: dict) -> None:
    """Keep `out`'s cached edits (resume) only when its identity stamp equals `identity` (what
    made them: weights, settings, data); otherwise start the folder over. Then stamp it."""
    stamp = out / IDENTITY
    if out.exists() and (not stamp.is_file() or json.loads(stamp.read_text()) != identity):
        log.info("%s holds edits of other settings: starting over", out)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(identity, indent=2))
