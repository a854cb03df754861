"""What each cheaper setting of the training step's generator costs in quality, on the world
(issue 15; README, Training cost). For every setting of `method.train_*`, the head is trained at
one scale with the same seed, data order and noise as the default settings, then scored on the
world's held-out test sets (Emu Edit and MagicBrush single-turn formats, `data/benchmarks`) by
the evaluation's own code: region IoU against the ground-truth region, edit success, region
fraction. Inference (the edit) is the same for every setting: only training changes.

    python benchmarks/training_cost.py [--scale 5M] [--seeds 0,1] [--settings NAMES]
                                       [--json benchmarks/results/world_training_cost.json]
    python benchmarks/training_cost.py --plot RESULTS.json [RESULTS.json ...]

--plot draws world region IoU against the paper-size TFLOP per training sample of the same
settings (benchmarks/results/paper_training_cost_cpu_flops.json) into
benchmarks/results/training_cost.png: one point per setting and seed, the mean marked.

Needs the default pipeline's outputs (`dvc repro` up to `benchmarks`). The heads are trained
without the feature cache (the cache holds z_src at one side only), so every setting reads the
same float32 frozen features. Paper-size FLOPs of the same settings: benchmarks/train_step.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from train_step import TRAINING_COST_SETTINGS, Setting, method_values

from components.config import MethodConfig, Params, load_params
from components.editing import Editor
from components.evaluation.benchmarks import load_emu_edit, load_magicbrush
from components.evaluation.harness import metric_clip
from components.evaluation.metrics import load_metric_models
from components.evaluation.run import evaluate_emu_edit, evaluate_magicbrush
from components.evaluation.systems import editor_systems
from components.training.fit import LAST, ScaleRun, fit_scale
from components.training.module import head_weights

METRICS = ("region_iou", "region_iou_grid", "edit_success", "region_fraction", "empty_region")
HEADER = ("profile", "models", "scale", "training_samples", "inference")  # what runs share
SCORED = {"emu_edit": "ours/{}", "magicbrush": "ours/single/{}"}  # MagicBrush: single-turn


SETTINGS = {setting.name: setting for setting in TRAINING_COST_SETTINGS}  # train_step.py's rows


def with_setting(params: Params, setting: Setting, seed: int) -> Params:
    method = params.method
    update = method_values(setting.method, method)
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
    parser.add_argument("--plot", nargs="+", help="draw these results' JSON files, train nothing")
    parser.add_argument("--flops", default="benchmarks/results/paper_training_cost_cpu_flops.json")
    parser.add_argument("--figure", default="benchmarks/results/training_cost.png")
    args = parser.parse_args(argv)
    if args.plot:
        plots = [Path(path) for path in args.plot]
        plot(plots, Path(args.flops), Path(args.figure), Path("metrics") / args.scale)
        return {}
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
    report = earlier_results(Path(args.json), report)
    trained: dict[tuple, str] = {}  # settings whose training step is the same share a head
    scored: dict[tuple, dict] = {}  # (generation, seed) -> its run: scored once
    for name in names:
        generation = with_setting(params, SETTINGS[name], seeds[0]).method.in_training
        entry = {"name": name, **generation._asdict()}
        if generation in trained:
            entry["same_training_as"] = trained[generation]
        trained.setdefault(generation, name)
        runs = []
        for seed in seeds:
            if (generation, seed) not in scored:
                run_params = with_setting(params, SETTINGS[name], seed)
                side, steps, guidance = generation
                folder = Path(args.out) / f"side{side}-k{steps}-cfg{guidance:g}" / f"seed{seed}"
                print(f"{name}, seed {seed}: {generation}", flush=True)
                head, seconds = train(run_params, args.scale, folder)
                scores = score(untrained, head, run_params, metric_models)
                run = {"seed": seed, "train_seconds": round(seconds, 1), **scores}
                scored[generation, seed] = run
                print(json.dumps(run), flush=True)
            runs.append(scored[generation, seed])
        report = merged(report, {"settings": [entry | {"runs": runs}]})
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_table(report)
    return report


def merged(base: dict, new: dict) -> dict:
    """`base` with `new`'s settings added; a setting in both keeps every seed's run, `new`'s
    where both ran one."""
    entries = {entry["name"]: entry for entry in base["settings"]}
    for entry in new["settings"]:
        before = entries.get(entry["name"], {"runs": []})
        runs = {run["seed"]: run for run in before["runs"]} | {r["seed"]: r for r in entry["runs"]}
        entries[entry["name"]] = before | entry | {"runs": sorted(runs.values(), key=seed_of)}
    return base | {"settings": list(entries.values())}


def earlier_results(path: Path, report: dict) -> dict:
    """`report` with the runs already in `path`: runs of several invocations share one file."""
    if not path.is_file():
        return report
    earlier = json.loads(path.read_text())
    if any(earlier[key] != report[key] for key in HEADER):
        raise SystemExit(f"{path}: results of other {'/'.join(HEADER)}; pass another --json")
    return merged(report, earlier)


def seed_of(run: dict) -> int:
    return run["seed"]


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


def plot(results: list[Path], flops: Path, figure: Path, evaluations: Path) -> None:
    """World region IoU (both test sets' edits) against paper-size TFLOP per training sample,
    beside the trivial systems of the scale's own evaluation (`evaluations`: metrics/<scale>)."""
    counted = json.loads(flops.read_text())["settings"]
    tflop = {e["name"]: e["training_step"]["flops_per_sample"] / 1e12 for e in counted}
    ious: dict[str, dict[int, float]] = defaultdict(dict)  # setting -> seed -> IoU
    reports = [json.loads(path.read_text()) for path in results]
    for report in reports:
        for entry in report["settings"]:
            for run in entry["runs"]:
                ious[entry["name"]][run["seed"]] = pooled(run, "region_iou")
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for name, by_seed in ious.items():
        x = tflop[name]
        ax.scatter([x] * len(by_seed), list(by_seed.values()), color="tab:blue", alpha=0.4, s=18)
        mean = statistics.mean(by_seed.values())
        ax.scatter([x], [mean], color="tab:blue", marker="_", s=300)
        seeds = f"{len(by_seed)} seed{'s' * (len(by_seed) > 1)}"
        ax.annotate(f"{name} ({seeds})", (x, mean), xytext=(6, 3), textcoords="offset points",
                    fontsize=7)  # fmt: skip
    for system, style in (("untrained", ":"), ("whole_image", "-.")):
        value = trivial_iou(evaluations, system)
        ax.axhline(value, color="grey", linestyle=style, linewidth=1)
        ax.text(1.3, value, f" {system.replace('_', ' ')} {value:.3f}", va="bottom", fontsize=7)
    ax.axvline(4.0, color="tab:red", linestyle="--", linewidth=1)
    ax.text(4.0, ax.get_ylim()[1], " 4 TFLOP", color="tab:red", va="top", fontsize=8)
    ax.set_xscale("log")
    ticks = [1.5, 2, 3, 4, 6, 10, 20, 40]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlim(1.3, 120)
    ax.set_xlabel("TFLOP per training sample, paper size (SD 1.5 inpainting, 512 px, cached)")
    ax.set_ylabel("world region IoU, Emu Edit + MagicBrush single-turn")
    first = reports[0]
    ax.set_title(
        f"The training step's generator settings: {first['profile']} profile, {first['models']}"
        f",\n{first['training_samples']} training samples ({first['scale']} analogue); "
        f"ground-truth region (ceiling) {trivial_iou(evaluations, 'ground_truth'):.3f}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(figure, dpi=120)
    plt.close(fig)
    print(f"wrote {figure}")


def trivial_iou(evaluations: Path, system: str) -> float:
    """A system's region IoU over both test sets, from the scale's evaluation metrics."""
    emu = json.loads((evaluations / "emu_edit.json").read_text())
    magicbrush = json.loads((evaluations / "magicbrush.json").read_text())
    parts = [
        (emu["scores"][f"{system}/region_iou"], emu["cases"]),
        (magicbrush["scores"][f"{system}/single/region_iou"], magicbrush["cases"]),
    ]
    return sum(value * n for value, n in parts) / sum(n for _, n in parts)


if __name__ == "__main__":
    main()
