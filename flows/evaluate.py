"""Prefect flows for `benchmarks` (the embedded demo benchmarks) and `evaluate`."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
from functools import partial
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from prefect import flow, get_run_logger, task

from components.config import Params
from components.editing import Editor
from components.evaluation.baseline import InstructPix2PixBaseline
from components.evaluation.benchmarks import load_emu_edit, load_magicbrush
from components.evaluation.demo_benchmarks import write_emu_edit_demo, write_magicbrush_demo
from components.evaluation.metrics import load_metric_models
from components.evaluation.report import load_published, table_rows, write_report
from components.evaluation.run import BenchmarkResult, evaluate_emu_edit, evaluate_magicbrush
from components.evaluation.systems import CachedSystem, EditCache, edit_baseline, edit_ours
from components.pictures import comparison_grid
from flows.tracking import configure_tracking
from flows.train import scale_run_id, trained_head

BENCHMARKS = ("emu_edit", "magicbrush")
log = logging.getLogger(__name__)


@flow(name="benchmarks")
def benchmarks_flow(out: Path, seed: int) -> dict[str, Path]:
    """Small Emu Edit and MagicBrush test sets from the demo data, in the published formats."""
    return {
        "emu_edit": write_emu_edit_demo(out / "emu_edit", seed),
        "magicbrush": write_magicbrush_demo(out / "magicbrush", seed),
    }


@task(name="evaluate-benchmark")
def evaluate_benchmark(
    params: Params,
    scale: str,
    benchmark: str,
    data: Path,
    checkpoint: Path | None,
    out: Path,
    limit: int | None,
) -> BenchmarkResult:
    editor = Editor.from_params(params, checkpoint)
    method = params.method
    baseline = InstructPix2PixBaseline.load(
        params.models.baseline,
        method.resolution,
        method.steps,
        params.evaluate.baseline_guidance_scale,
        params.evaluate.baseline_image_guidance_scale,
    )
    systems = {
        "ours": CachedSystem(partial(edit_ours, editor, seed=params.seed), EditCache(out / "ours")),
        "baseline": CachedSystem(
            partial(edit_baseline, baseline, seed=params.seed), EditCache(out / "baseline")
        ),
    }
    models = params.models
    metric_models = load_metric_models(
        models.metric_clip, models.metric_clip_pretrained, models.dino
    )
    rows = params.evaluate.grid_rows
    if benchmark == "emu_edit":
        return evaluate_emu_edit(
            load_emu_edit(data, params.evaluate.emu_edit_split, limit), systems, metric_models, rows
        )
    return evaluate_magicbrush(load_magicbrush(data, limit=limit), systems, metric_models, rows)


@flow(name="evaluate")
def evaluate_flow(
    params: Params,
    scale: str,
    benchmark: str,
    data: Path | None = None,
    checkpoint: Path | None = None,
    out: Path | None = None,
    metrics: Path | None = None,
    limit: int | None = None,
) -> dict:
    """Ours (the scale's head) and the baseline on one benchmark; outputs per sample in `out`,
    scores in `metrics` and in the scale's MLflow run."""
    logger = get_run_logger()
    data = data or Path(getattr(params.evaluate, benchmark))
    checkpoint = checkpoint or trained_head(params, scale)
    head = str(checkpoint) if checkpoint else "untrained (seeded)"
    if checkpoint is None:
        logger.warning("scale %s has no trained head: evaluating an untrained, seeded head", scale)
    out = out or Path(params.evaluate.out) / scale / benchmark
    reuse_only_same_settings(out, params, benchmark, data, checkpoint)
    result = evaluate_benchmark(
        params, scale, benchmark, data, checkpoint, out, limit or params.evaluate.limit
    )
    summary = {
        "scale": scale,
        "benchmark": benchmark,
        "head": head,
        "data": str(data),
        "edits": len(result.rows),
        "scores": result.scores,
    }
    _write(out, result)
    metrics = metrics or Path("metrics") / scale / f"{benchmark}.json"
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps(summary, indent=2) + "\n")
    _log(params, scale, checkpoint, benchmark, out, result)
    logger.info(
        "%s on %s (%s): %s",
        scale,
        benchmark,
        head,
        ", ".join(
            f"{name} {value:.4f}"
            for name, value in result.scores.items()
            if name.split("/")[-2] in ("ours", "baseline", "single", "multi")
        ),
    )
    return summary


def reuse_only_same_settings(
    out: Path, params: Params, benchmark: str, data: Path, checkpoint: Path | None
) -> None:
    """Cached edits are reused (resume) only when the head, models, method, describe and
    evaluation settings and the data are the same; otherwise the folder starts over."""
    head = hashlib.sha256(checkpoint.read_bytes()).hexdigest() if checkpoint else "untrained"
    settings = params.model_dump(mode="json", include={"seed", "models", "method", "describe"})
    evaluation = params.evaluate.model_dump(exclude={"limit", "grid_rows", "out"})
    identity = {
        "head": head,
        "benchmark": benchmark,
        "data": str(data),
        "settings": settings,
        "evaluate": evaluation,
    }
    stamp = out / "identity.json"
    if out.exists() and (not stamp.is_file() or json.loads(stamp.read_text()) != identity):
        log.info("%s holds edits of other settings: starting over", out)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(identity, indent=2))


def _write(out: Path, result: BenchmarkResult) -> None:
    columns = list(dict.fromkeys(key for row in result.rows for key in row))
    with (out / "samples.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(result.rows)
    comparison_grid(result.pictures).save(out / "grid.png")


def _log(
    params: Params,
    scale: str,
    checkpoint: Path | None,
    benchmark: str,
    out: Path,
    result: BenchmarkResult,
) -> None:
    """Into the scale's training run when this is its head; else into a run of its own."""
    configure_tracking(params.tracking)
    client = MlflowClient()
    trained = checkpoint is not None and checkpoint == trained_head(params, scale)
    run_id = scale_run_id(params, scale) if trained else None
    own_run = run_id is None
    if own_run:
        experiment = mlflow.get_experiment_by_name(params.tracking.experiment).experiment_id
        run_id = client.create_run(
            experiment,
            run_name=f"evaluate-{scale}",
            tags={"scale": scale, "head": str(checkpoint or "untrained")},
        ).info.run_id
    for name, value in result.scores.items():
        client.log_metric(run_id, f"eval/{benchmark}/{name}", value)
    for artifact in ("samples.csv", "grid.png"):
        client.log_artifact(run_id, str(out / artifact), f"eval/{benchmark}")
    if own_run:
        client.set_terminated(run_id)


@flow(name="report")
def report_flow(params: Params, out: Path) -> Path:
    """Tables 2-3 and the scaling plot, from the `eval/` metrics of each scale's MLflow run."""
    configure_tracking(params.tracking)
    client = MlflowClient()
    scores = {}
    for scale in params.scales:
        run_id = scale_run_id(params, scale)
        if run_id is None:
            get_run_logger().warning("scale %s has no training run: left out", scale)
            continue
        metrics = client.get_run(run_id).data.metrics
        scores[scale] = {
            benchmark: {
                name.removeprefix(f"eval/{benchmark}/"): value
                for name, value in metrics.items()
                if name.startswith(f"eval/{benchmark}/")
            }
            for benchmark in BENCHMARKS
        }
        scores[scale] = {b: flat for b, flat in scores[scale].items() if flat}
    write_report(table_rows(scores, params.scales, load_published()), out)
    return out / "tables.md"
