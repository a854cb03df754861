"""Prefect flow for `pairs`: the editor trained on editing pairs, trained and scored per scale.

At each scale, InstructPix2Pix (components/world/instruct_pix2pix.py) trains on one editing
pair of every scene that the scale's head sees as image + caption (the same nested subset,
`scale_samples`), from the same inpainting model's VAE, text encoder and UNet; then the
evaluation's own harness scores it on the same test sets. Its MLflow run sits beside the
head's runs in the same experiment, tagged `training_data: editing pairs` (ours: `text-image
pairs`), with its training compute logged as ours is.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections import Counter
from functools import partial
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from prefect import flow, get_run_logger, task

from components.config import Params
from components.evaluation.baseline import InstructPix2PixBaseline
from components.evaluation.harness import (
    BENCHMARKS,
    count_scored,
    metric_clip,
    reuse_only_if_same,
    score_systems,
    write_outputs,
)
from components.evaluation.systems import CachedSystem, EditCache, copy_of_input, edit_baseline
from components.models.generators import StableDiffusionParts, load_generator_parts
from components.models.provenance import overall, provenance
from components.tracking import configure_tracking
from components.training.compute import compute_record
from components.training.data import scale_samples
from components.training.tracking import flatten, git_commit
from components.world.instruct_pix2pix import (
    PairTraining,
    encode_pairs,
    instruct_pix2pix_pipeline,
    train_instruct_pix2pix,
)
from components.world.pairs import editing_pair, scene_index

SYSTEM = "pairs"  # the pair-trained editor's name in scores and samples.csv
LABEL = "InstructPix2Pix trained on editing pairs"
RUN_FILE = "run.json"  # in a scale's folder: the MLflow run its scores are logged into
TRAINING_DATA = "training_data"  # the MLflow tag that tells the two sides' runs apart
EDITING_PAIRS = "editing pairs"


def pairs_folder(params: Params, scale: str) -> Path:
    return Path(params.pairs.out) / scale


def pair_training(params: Params) -> PairTraining:
    cfg = params.pairs
    return PairTraining(
        cfg.epochs, cfg.batch_size, cfg.lr, cfg.warmup_steps, cfg.conditioning_dropout
    )


@flow(name="pairs")
def pairs_flow(
    params: Params,
    scales: list[str],
    prepared: Path,
    descriptions: Path,
    metrics: Path,
    plots: Path,
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """Each scale's InstructPix2Pix trained on its scenes' editing pairs, then scored on both
    benchmarks; `metrics` (one JSON) gathers what each trained on, cost and scored, by scale
    (scales not run here keep their earlier record), `plots/<scale>.csv` its loss curve.
    Without world data there are no pairs to render: the skip and its reason are recorded."""
    metrics.parent.mkdir(parents=True, exist_ok=True)
    if params.prepare.source != "world":
        reason = (
            f"prepare.source is {params.prepare.source!r}: editing pairs are rendered from the "
            "world's scenes only; with real data the comparison is the paper's published "
            "editors (reports/tables.md)"
        )
        get_run_logger().warning("pairs skipped: %s", reason)
        for folder in (Path(params.pairs.out), Path(params.evaluate.out) / "pairs", plots):
            folder.mkdir(parents=True, exist_ok=True)  # the stage's outputs, empty
        metrics.write_text(json.dumps({"skipped": reason}, indent=2) + "\n")
        return {}
    record = json.loads(metrics.read_text()) if metrics.is_file() else {}
    record.pop("skipped", None)
    for scale in scales:
        record[scale] = {
            "train": train_pairs(params, scale, prepared, descriptions, plots, progress)
        }
        for benchmark in BENCHMARKS:
            record[scale][benchmark] = evaluate_pairs(params, scale, benchmark, limit=limit)
    record = {scale: record[scale] for scale in params.scales if scale in record}
    metrics.write_text(json.dumps(record, indent=2) + "\n")
    return record


def record_lines(record: dict[str, dict], metrics: Path) -> list[str]:
    """What `pairs_flow` did, a line per scale (what `pairs` prints): its editing pairs, their
    training compute and its region IoU on both test sets; or why it skipped (from `metrics`)."""
    if not record:
        return [f"pairs: skipped, {json.loads(metrics.read_text())['skipped']}"]
    lines = []
    for scale, done in record.items():
        train = done["train"]
        scores = {**done["emu_edit"]["scores"], **done["magicbrush"]["scores"]}
        lines.append(
            f"pairs {scale}: {train['pairs']} editing pairs, "
            f"{train['compute']['train_tflop']:.3g} TFLOP; region IoU "
            f"{scores['pairs/region_iou']:.4f} (Emu Edit), "
            f"{scores['pairs/single/region_iou']:.4f} (MagicBrush single-turn)"
        )
    return lines


@task(name="train-pairs")
def train_pairs(
    params: Params,
    scale: str,
    prepared: Path,
    descriptions: Path,
    plots: Path,
    progress: bool = True,
) -> dict:
    """Train the scale's InstructPix2Pix on its scenes' editing pairs; save it in diffusers'
    InstructPix2Pix layout in `pairs.out/<scale>`, its losses to `plots/<scale>.csv`, what it
    cost and what it saw to its MLflow run; return that record."""
    logger = get_run_logger()
    count = params.scales[scale]
    samples = scale_samples(prepared, descriptions, count, params.seed, scale)
    pairs = [editing_pair(params.seed, scene_index(source)) for source in samples["source"]]
    kinds = Counter(pair.kind for pair in pairs)
    family, parts = load_generator_parts(params.models.inpainting)
    if not isinstance(parts, StableDiffusionParts):
        raise ValueError(
            f"models.inpainting is a {family} pipeline: the pair-trained InstructPix2Pix starts "
            "from an SD inpainting UNet"
        )
    pipeline = instruct_pix2pix_pipeline(parts, params.pairs.init)
    encoded = encode_pairs(pipeline, pairs, params.world.side)
    training = pair_training(params)
    run_id = _start_run(params, scale, count)
    client = MlflowClient()
    logger.info(
        "%s: InstructPix2Pix on %d editing pairs (%s), %d steps",
        scale,
        len(pairs),
        ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())),
        training.steps_for(len(pairs)),
    )
    try:
        result = train_instruct_pix2pix(pipeline, encoded, training, params.seed, progress=progress)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    folder = pairs_folder(params, scale)
    shutil.rmtree(folder, ignore_errors=True)
    pipeline.save_pretrained(folder, safe_serialization=True)
    (folder / RUN_FILE).write_text(json.dumps({"run_id": run_id}))
    loss_curve = plots / f"{scale}.csv"
    loss_curve.parent.mkdir(parents=True, exist_ok=True)
    with loss_curve.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "loss"])
        writer.writerows((step, f"{loss:.6f}") for step, loss in enumerate(result.losses))
    compute = compute_record(result.flops_per_sample, result.samples_seen, result.seconds)
    summary = {
        "scale": scale,
        "system": LABEL,
        "training_samples": count,
        "pairs": len(pairs),
        "kinds": dict(sorted(kinds.items())),
        "steps": len(result.losses),
        "loss_last_10_steps": sum(result.losses[-10:]) / len(result.losses[-10:]),
        "compute": compute,
    }
    timestamp = int(mlflow.utils.time.get_current_time_millis())
    curve = [Metric("train/loss", loss, timestamp, step) for step, loss in enumerate(result.losses)]
    curve += [Metric(f"compute/{k}", float(v), timestamp, 0) for k, v in compute.items()]
    for start in range(0, len(curve), 1000):  # MLflow takes at most 1000 metrics per batch
        client.log_batch(run_id, metrics=curve[start : start + 1000])
    client.log_artifact(run_id, str(loss_curve), "losses")
    client.set_terminated(run_id)
    return summary


def _start_run(params: Params, scale: str, count: int) -> str:
    """The scale's pair-trained run, in the experiment of the head's runs."""
    configure_tracking(params.tracking)
    client = MlflowClient()
    experiment = mlflow.get_experiment_by_name(params.tracking.experiment).experiment_id
    models = overall(provenance(params.models), ("inpainting",))
    run = client.create_run(
        experiment,
        run_name=f"train-pairs {scale}: {params.profile} profile, {count} editing pairs, {models}",
        tags={
            TRAINING_DATA: EDITING_PAIRS,
            "system": LABEL,
            "scale": scale,
            "profile": params.profile,
            "training_samples": str(count),
            "models": models,
            "git_commit": git_commit(),
        },
    )
    flat = flatten(params.model_dump(include={"seed", "models", "pairs", "world"}))
    flat |= {"scale": scale, "scale_count": str(count)}
    items = [Param(key, value) for key, value in sorted(flat.items())]
    for start in range(0, len(items), 100):
        client.log_batch(run.info.run_id, params=items[start : start + 100])
    return run.info.run_id


@task(name="evaluate-pairs")
def evaluate_pairs(params: Params, scale: str, benchmark: str, limit: int | None = None) -> dict:
    """The scale's pair-trained InstructPix2Pix and the copy of the input on one benchmark, in
    the evaluation's harness and settings (evaluate.baseline_*); outputs per sample in
    `evaluate.out/pairs/<scale>/<benchmark>`, scores into the scale's pair-trained MLflow run."""
    folder = pairs_folder(params, scale)
    data = Path(getattr(params.evaluate, benchmark))
    out = Path(params.evaluate.out) / "pairs" / scale / benchmark
    cfg = params.evaluate
    _reuse_only_same_settings(out, params, folder, benchmark, data)
    editor = InstructPix2PixBaseline.load(
        str(folder),
        params.method.resolution,
        cfg.baseline_steps,
        cfg.baseline_guidance_scale,
        cfg.baseline_image_guidance_scale,
    )
    edit = partial(edit_baseline, editor, seed=params.seed)
    systems = {SYSTEM: CachedSystem(edit, EditCache(out / SYSTEM)), "copy": copy_of_input}
    result = score_systems(params, benchmark, data, systems, None, limit or cfg.limit)
    clip, pretrained = metric_clip(params, benchmark)
    summary = {
        "scale": scale,
        "benchmark": benchmark,
        "system": LABEL,
        "model": str(folder),
        "data": str(data),
        "edits": len(result.rows),
        "cases": count_scored(result, "single", SYSTEM),
        "sessions": count_scored(result, "multi", SYSTEM),
        "profile": params.profile,
        "training_samples": params.scales[scale],
        "models": {
            "pairs": overall(provenance(params.models), ("inpainting",)),
            "metrics": overall(provenance(params.models), ("metric_clip", "dino")),
        },
        "metric_models": {"clip": clip, "clip_pretrained": pretrained, "dino": params.models.dino},
        "settings": {
            "resolution": params.method.resolution,
            "steps": cfg.baseline_steps,
            "guidance_scale": cfg.baseline_guidance_scale,
            "image_guidance_scale": cfg.baseline_image_guidance_scale,
        },
        "scores": result.scores,
    }
    write_outputs(out, result)
    configure_tracking(params.tracking)
    client = MlflowClient()
    run_id = json.loads((folder / RUN_FILE).read_text())["run_id"]
    for name, value in result.scores.items():
        client.log_metric(run_id, f"eval/{benchmark}/{name}", value)
    for artifact in ("samples.csv", "grid.png"):
        client.log_artifact(run_id, str(out / artifact), f"eval/{benchmark}")
    get_run_logger().info(
        "pair-trained %s on %s: %s",
        scale,
        benchmark,
        ", ".join(
            f"{name} {value:.4f}"
            for name, value in result.scores.items()
            if name.split("/")[-2] in (SYSTEM, "single", "multi")
            and name.split("/")[-1] in ("region_iou", "edit_success")
        ),
    )
    return summary


def _reuse_only_same_settings(
    out: Path, params: Params, folder: Path, benchmark: str, data: Path
) -> None:
    """Cached edits are reused (resume) only for the same weights, settings and data."""
    weights = hashlib.sha256((folder / "unet" / "diffusion_pytorch_model.safetensors").read_bytes())
    identity = {
        "unet": weights.hexdigest(),
        "benchmark": benchmark,
        "data": str(data),
        "seed": params.seed,
        "resolution": params.method.resolution,
        "evaluate": params.evaluate.model_dump(exclude={"limit", "grid_rows", "out"}),
    }
    reuse_only_if_same(out, identity)
