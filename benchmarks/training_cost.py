"""What each cheaper setting of the training step's generator costs in quality, on the world
(issue 15; README, Training cost). For every setting of `method.train_*`, the head is trained at
one scale with the same seed, data order and noise as the default settings, then scored on the
world's held-out test sets (Emu Edit and MagicBrush single-turn formats, `data/benchmarks`) by
the evaluation's own code: region IoU against the ground-truth region, edit success, region
fraction. Inference (the edit) is the same for every setting: only training changes.

    python benchmarks/training_cost.py [--scale 5M] [--seeds 0,1] [--settings NAMES]
                                       [--json benchmarks/results/world_training_cost.json]

Needs the default pipeline's outputs (`dvc repro` up to `benchmarks`). The heads are trained
without the feature cache (the cache holds z_src at one side only), so every setting reads the
same float32 frozen features. Paper-size FLOPs of the same settings: benchmarks/train_step.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from train_step import TRAINING_COST_SETTINGS, Setting

from components.config import MethodConfig, Params, load_params
from components.editing import Editor
from components.evaluation.benchmarks import load_emu_edit, load_magicbrush
from components.evaluation.metrics import load_metric_models
from components.evaluation.run import evaluate_emu_edit, evaluate_magicbrush
from components.evaluation.systems import editor_systems
from components.training.fit import LAST, ScaleRun, fit_scale
from components.training.module import head_weights
from flows.evaluate import metric_clip

METRICS = ("region_iou", "region_iou_grid", "edit_success", "region_fraction", "empty_region")
SCORED = {"emu_edit": "ours/{}", "magicbrush": "ours/single/{}"}  # MagicBrush: single-turn


SETTINGS = {setting.name: setting for setting in TRAINING_COST_SETTINGS}  # train_step.py's rows


def with_setting(params: Params, setting: Setting, seed: int) -> Params:
    method = params.method
    update = {k: v(method) if callable(v) else v for k, v in setting.method.items()}
    checked = MethodConfig(**(method.model_dump() | update))  # validated as a params file is
    return params.model_copy(update={"method": checked, "seed": seed})


def train(params: Params, scale: str, folder: Path) -> tuple[Path, float]:
    """The head of one setting and seed (resumed if a killed run left a checkpoint)."""
    head = folder / "head.safetensors"
    if head.is_file():
        return head, json.loads((folder / "train.json").read_text())["seconds"]
    start = time.perf_counter()
    run = ScaleRun(
        scale=scale,
        prepared=Path("data/prepared"),
        descriptions=Path("data/descriptions/descriptions.parquet"),
        folder=folder,
        loss_curve=folder / "losses.csv",
        run_id=None,
        tracking_uri=None,
    )
    fit_scale(params, run, resume=True)
    seconds = time.perf_counter() - start
    save_file(head_weights(folder / LAST), head)
    (folder / "train.json").write_text(json.dumps({"seconds": seconds}) + "\n")
    return head, seconds


def score(untrained: Editor, head: Path, params: Params, metric_models: dict) -> dict:
    """Ours with `head` on both world test sets (the trivial systems and the ceiling are the
    scale's own evaluation, `dvc repro`): the METRICS and how many edits each saw."""
    editor = untrained.with_head(head)
    ours = {"ours": editor_systems(editor, untrained, params.seed)["ours"]}
    cfg, grid = params.evaluate, editor.model.encoders.grid
    emu = evaluate_emu_edit(
        load_emu_edit(Path(cfg.emu_edit), cfg.emu_edit_split, None),
        ours,
        metric_models["emu_edit"],
        0,
        grid,
        progress=False,
    )
    magicbrush = evaluate_magicbrush(
        load_magicbrush(Path(cfg.magicbrush), captions=cfg.magicbrush_captions),
        ours,
        metric_models["magicbrush"],
        0,
        grid,
        progress=False,
        input_captions=cfg.magicbrush_input_captions,
    )
    results = {"emu_edit": emu, "magicbrush": magicbrush}
    single = {"emu_edit": lambda row: True, "magicbrush": lambda row: row["setting"] == "single"}
    return {
        benchmark: {metric: results[benchmark].scores[key.format(metric)] for metric in METRICS}
        | {"edits": sum(map(single[benchmark], results[benchmark].rows))}
        for benchmark, key in SCORED.items()
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--scale", default="5M", help="the scale every setting trains at")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (each setting)")
    parser.add_argument("--settings", help=f"comma-separated, of: {', '.join(SETTINGS)}")
    parser.add_argument("--out", default="/tmp/regionedit-training-cost", help="heads")
    parser.add_argument("--json", default="benchmarks/results/world_training_cost.json")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    names = [name.strip() for name in args.settings.split(",")] if args.settings else [*SETTINGS]
    unknown = sorted(set(names) - set(SETTINGS))
    if unknown:
        raise SystemExit(f"--settings: unknown {unknown}; choose from {list(SETTINGS)}")
    if args.scale not in params.scales:
        raise SystemExit(f"--scale {args.scale}: not in params scales {list(params.scales)}")
    seeds = [int(seed) for seed in args.seeds.split(",")]
    untrained = Editor.from_params(params)  # inference: the same for every setting
    metric_models = {
        benchmark: load_metric_models(*metric_clip(params, benchmark), params.models.dino)
        for benchmark in SCORED
    }
    report: dict[str, Any] = {
        "profile": params.profile,
        "models": "world models (models/world), random instruction encoder",
        "scale": args.scale,
        "training_samples": params.scales[args.scale],
        "inference": {
            "resolution": params.method.resolution,
            "steps": params.method.steps,
            "guidance_scale": params.method.guidance_scale,
            "scheduler": params.method.scheduler,
        },
        "test_sets": {"emu_edit": params.evaluate.emu_edit, "magicbrush": "single-turn"},
        "settings": [],
    }
    trained: dict[tuple, str] = {}  # settings whose training step is the same share a head
    for name in names:
        generation = with_setting(params, SETTINGS[name], seeds[0]).method.in_training
        entry = {"name": name, **generation._asdict()}
        if generation in trained:
            entry["same_training_as"] = trained[generation]
        trained.setdefault(generation, name)
        runs = []
        for seed in seeds:
            run_params = with_setting(params, SETTINGS[name], seed)
            side, steps, guidance = generation
            folder = Path(args.out) / f"side{side}-k{steps}-cfg{guidance:g}" / f"seed{seed}"
            print(f"{name}, seed {seed}: {generation}", flush=True)
            head, seconds = train(run_params, args.scale, folder)
            runs.append(
                {
                    "seed": seed,
                    "train_seconds": round(seconds, 1),
                    **score(untrained, head, run_params, metric_models),
                }
            )
            print(json.dumps(runs[-1]), flush=True)
        report["settings"].append(entry | {"runs": runs})
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_table(report)
    return report


def pooled(run: dict, metric: str) -> float:
    """The metric's mean over both test sets' edits (Emu Edit, MagicBrush single-turn)."""
    parts = [run[benchmark] for benchmark in SCORED]
    return sum(part[metric] * part["edits"] for part in parts) / sum(p["edits"] for p in parts)


def print_table(report: dict) -> None:
    print(f"\n{'setting':<38}{'side':>5}{'K':>3}{'cfg':>5}{'IoU':>8}{'success':>9}{'fraction':>9}")
    for entry in report["settings"]:
        runs = entry["runs"]
        iou = statistics.mean(pooled(run, "region_iou") for run in runs)
        success = statistics.mean(pooled(run, "edit_success") for run in runs)
        fraction = statistics.mean(pooled(run, "region_fraction") for run in runs)
        print(
            f"{entry['name']:<38}{entry['resolution']:>5}{entry['steps']:>3}"
            f"{entry['guidance_scale']:>5.1f}{iou:>8.4f}{success:>9.4f}{fraction:>9.4f}"
        )


if __name__ == "__main__":
    main()
