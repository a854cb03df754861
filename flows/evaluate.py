"""Prefect flows for `benchmarks` (the embedded demo benchmarks) and `evaluate`."""

from __future__ import annotations

import hashlib
import json
from functools import partial
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from prefect import flow, get_run_logger, task

from components.config import Params
from components.editing import Editor
from components.evaluation.baseline import InstructPix2PixBaseline
from components.evaluation.comparison import comparison_lines, load_comparison
from components.evaluation.demo_benchmarks import write_emu_edit_demo, write_magicbrush_demo
from components.evaluation.harness import (
    BENCHMARKS,
    count_scored,
    metric_clip,
    reuse_only_if_same,
    score_systems,
    write_outputs,
)
from components.evaluation.report import (
    known_answers,
    load_published,
    metric_notes,
    report_tables,
    write_report,
)
from components.evaluation.run import BenchmarkResult
from components.evaluation.systems import (
    CachedSystem,
    EditCache,
    copy_of_input,
    edit_baseline,
    editor_systems,
)
from components.models.provenance import BASELINE, METRICS, OURS, overall, provenance, weights
from components.tracking import configure_tracking
from components.training.outputs import scale_run_id, trained_head

# ours, the trivial systems and the ceiling (DESIGN §10), under these names in the scores
SYSTEMS = ("ours", "untrained", "whole_image", "random_area", "ground_truth", "baseline", "copy")
EVERY_SCALE = ("ours", "copy")  # the others do not depend on the scale's head: run once


def systems_at(params: Params, scale: str) -> tuple[str, ...]:
    """The systems evaluated at `scale`: ours and the copy at every scale, the rest (which no
    head trained at a scale changes) once, at the largest scale, where the report reads them;
    a loss ablation only ours (the rest are the scale's own evaluation)."""
    if params.ablation:
        return ("ours",)
    largest = max(params.scales, key=params.scales.__getitem__)
    return SYSTEMS if scale == largest else tuple(s for s in SYSTEMS if s in EVERY_SCALE)


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
    """The scale's systems (`systems_at`) on one benchmark, each edit cached in `out/<system>`."""
    untrained = Editor.from_params(params)  # the seeded head, the same one every time
    editor = untrained.with_head(checkpoint) if checkpoint else untrained
    cfg = params.evaluate
    baseline = InstructPix2PixBaseline.load(
        params.models.baseline,
        params.method.resolution,
        cfg.baseline_steps,
        cfg.baseline_guidance_scale,
        cfg.baseline_image_guidance_scale,
    )
    edits = editor_systems(editor, untrained, params.seed) | {
        "baseline": partial(edit_baseline, baseline, seed=params.seed)
    }
    available = {name: CachedSystem(edit, EditCache(out / name)) for name, edit in edits.items()}
    available["copy"] = copy_of_input  # it costs nothing: not cached
    systems = {name: available[name] for name in systems_at(params, scale)}  # scores' order
    return score_systems(params, benchmark, data, systems, editor.model.encoders.grid, limit)


def what_ran(params: Params, scale: str, benchmark: str, checkpoint: Path | None) -> dict:
    """The labels every table row, plot and MLflow run of this evaluation carries."""
    kinds = provenance(params.models)
    clip, pretrained = metric_clip(params, benchmark)
    return {
        "profile": params.profile,
        "ablation": (  # null: every loss
            {"name": params.ablation, "zeroed": params.ablations.zero[params.ablation]}
            if params.ablation
            else None
        ),
        "training_samples": params.scales[scale],
        "head_state": "trained" if checkpoint else "untrained",
        "models": {
            "ours": overall(kinds, OURS),
            "baseline": overall(kinds, BASELINE),
            "metrics": overall(kinds, METRICS),
        },
        "weights": kinds,
        "metric_models": {
            "clip": clip,
            "clip_pretrained": pretrained,
            "clip_weights": weights(clip, params.models.zoo, pretrained, True, params.models.world),
            "dino": params.models.dino,
        },
        "baseline_settings": {
            "steps": params.evaluate.baseline_steps,
            "guidance_scale": params.evaluate.baseline_guidance_scale,
            "image_guidance_scale": params.evaluate.baseline_image_guidance_scale,
        },
    }


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
    """Ours (the scale's head) and the other SYSTEMS on one benchmark; outputs per sample in
    `out`, scores (`<system>/<metric>`) and what ran (profile, samples, models) in `metrics` and
    in the scale's MLflow run."""
    logger = get_run_logger()
    data = data or Path(getattr(params.evaluate, benchmark))
    checkpoint = checkpoint or trained_head(params, scale)
    head = str(checkpoint) if checkpoint else "untrained (seeded)"
    if checkpoint is None:
        logger.warning("scale %s has no trained head: evaluating an untrained, seeded head", scale)
    out = out or Path(params.evaluate.out) / scale / benchmark
    reuse_only_same_settings(out, params, scale, benchmark, data, checkpoint)
    result = evaluate_benchmark(
        params, scale, benchmark, data, checkpoint, out, limit or params.evaluate.limit
    )
    summary = {
        "scale": scale,
        "benchmark": benchmark,
        "head": head,
        "data": str(data),
        "edits": len(result.rows),
        "cases": count_scored(result, "single"),  # Emu Edit cases, or MagicBrush turns
        "sessions": count_scored(result, "multi"),  # MagicBrush only
        **what_ran(params, scale, benchmark, checkpoint),
        "scores": result.scores,
    }
    write_outputs(out, result)
    folder = Path("ablations", params.ablation) if params.ablation else Path(scale)
    metrics = metrics or Path("metrics") / folder / f"{benchmark}.json"
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps(summary, indent=2) + "\n")
    _log(params, scale, checkpoint, benchmark, out, result, summary)
    logger.info(summary_line(summary))
    return summary


def summary_line(summary: dict) -> str:
    """An evaluation's summary in one line: ours's and the baseline's scores (what `evaluate`
    prints and logs)."""
    scores = ", ".join(
        f"{name} {value:.4f}"
        for name, value in summary["scores"].items()
        if name.split("/")[-2] in ("ours", "baseline", "single", "multi")
    )
    return f"{summary['scale']} on {summary['benchmark']} ({summary['head']}): {scores}"


def reuse_only_same_settings(
    out: Path, params: Params, scale: str, benchmark: str, data: Path, checkpoint: Path | None
) -> None:
    """Cached edits are reused (resume) only when the head, models, method, describe and
    evaluation settings and the data are the same; otherwise the folder starts over."""
    head = hashlib.sha256(checkpoint.read_bytes()).hexdigest() if checkpoint else "untrained"
    settings = params.model_dump(mode="json", include={"seed", "models", "method", "describe"})
    evaluation = params.evaluate.model_dump(exclude={"limit", "grid_rows", "out", "profile"})
    identity = {
        "head": head,
        "systems": list(systems_at(params, scale)),
        "benchmark": benchmark,
        "data": str(data),
        "settings": settings,
        "evaluate": evaluation,
    }
    reuse_only_if_same(out, identity)


def _log(
    params: Params,
    scale: str,
    checkpoint: Path | None,
    benchmark: str,
    out: Path,
    result: BenchmarkResult,
    summary: dict,
) -> None:
    """Into the scale's training run when this is its head; else into a run of its own. Either
    run is tagged with what ran (profile, training samples, models), and an own run's name
    says it too."""
    configure_tracking(params.tracking)
    client = MlflowClient()
    trained = checkpoint is not None and checkpoint == trained_head(params, scale)
    run_id = scale_run_id(params, scale) if trained else None
    own_run = run_id is None
    tags = {
        "scale": scale,
        "profile": summary["profile"],
        "training_samples": str(summary["training_samples"]),
        "models": summary["models"]["ours"],
        "head": str(checkpoint or "untrained"),
    }
    if own_run:
        experiment = mlflow.get_experiment_by_name(params.tracking.experiment).experiment_id
        run_id = client.create_run(experiment, run_name=run_label(summary), tags=tags).info.run_id
    else:
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
    for name, value in result.scores.items():
        client.log_metric(run_id, f"eval/{benchmark}/{name}", value)
    for artifact in ("samples.csv", "grid.png"):
        client.log_artifact(run_id, str(out / artifact), f"eval/{benchmark}")
    if own_run:
        client.set_terminated(run_id)


def run_label(summary: dict) -> str:
    """e.g. `evaluate 1M: default profile, 16 training samples, random models, untrained head`."""
    return (
        f"evaluate {summary['scale']}: {summary['profile']} profile, "
        f"{summary['training_samples']} training samples, {summary['models']['ours']}, "
        f"{summary['head_state']} head"
    )


@flow(name="report")
def report_flow(params: Params, out: Path, metrics: Path = Path("metrics")) -> Path:
    """Tables 2-4, the known answers and the scaling plot, from each scale's
    `metrics/<scale>/<benchmark>.json` (the evaluate stages' DVC metrics, which record what ran
    beside the scores); the pair-trained comparison from `metrics/pairs/` beside them; the
    world's checks from `metrics/world.json` where it exists."""
    logger = get_run_logger()
    summaries = {}
    for scale in params.scales:
        found = {
            benchmark: json.loads(file.read_text())
            for benchmark in BENCHMARKS
            if (file := metrics / scale / f"{benchmark}.json").is_file()
        }
        if not found:
            logger.warning("scale %s has no evaluation in %s: left out", scale, metrics)
            continue
        summaries[scale] = found
    checks = metrics / "world.json"
    world = json.loads(checks.read_text()) if checks.is_file() else None
    ablations = {
        name: json.loads(file.read_text())
        for name in params.ablations.zero
        if (file := metrics / "ablations" / name / "emu_edit.json").is_file()
    }
    published = load_published()
    tables = report_tables(summaries, published, ablations, params.ablations.scale)
    comparison = comparison_lines(load_comparison(metrics, params.scales, published), out)
    notes = metric_notes(summaries)
    write_report(tables, out, notes, known_answers(summaries), world, comparison)
    return out / "tables.md"
