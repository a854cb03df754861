"""Trained without editing pairs against trained on them: the paper's claim, measured in the world.

Per test set and scale, ours (the region head trained on text-image pairs; metrics/<scale>/,
metrics/train/<scale>.json) beside InstructPix2Pix trained on editing pairs of the same scenes
(metrics/pairs.json): every metric of the paper's Tables 2-3, region IoU (ours: its region;
InstructPix2Pix: the pixels it changed) against the ground-truth region, edit success, and
what each training cost. Beside them, the paper's own comparison as printed: its Ours (1M...5M)
against InstructPix2Pix (450K pairs), MagicBrush and UltraEdit. `verdicts` says which side
wins each metric at how many scales, including where ours loses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from components.evaluation.report.formatting import (  # noqa: E402
    cell,
    column_header,
    markdown_table,
    scale_key,
)
from components.evaluation.report.markdown import write_csv  # noqa: E402
from components.evaluation.report.schema import LOWER_IS_BETTER, TABLES  # noqa: E402

SIDES = {"ours": "ours (text-image pairs)", "pairs": "InstructPix2Pix (editing pairs)"}
# what no number of either side is read without, from ours's largest-scale evaluation
REFERENCE_ROWS = {
    "copy": "copy of the input (changes nothing)",
    "ground_truth": "our generator in the ground-truth region (ceiling)",
}
KNOWN = ("region_iou", "edit_success")
PLOTTED = ("region_iou", "edit_success", "l1", "dino")  # the panels of pairs.png, per test set
PAPER_EDITORS = ("InstructPix2Pix (450K)", "MagicBrush (450+20K)", "UltraEdit (3M)")


@dataclass(frozen=True)
class Comparison:
    rows: list[dict]  # per test set, scale and side: every metric and the training compute
    published: dict[str, list[dict]]  # test set -> the paper's rows of its comparison
    references: dict[str, list[dict]]  # test set -> the copy of the input and the ceiling

    def columns(self, test_set: str) -> tuple[str, ...]:
        return (*TABLES[test_set][2], *KNOWN)


def load_comparison(metrics: Path, scales: dict[str, int], published: dict) -> Comparison:
    """Both sides at every scale where both were evaluated (a scale with one side only is left
    out: there is nothing to compare). `metrics`: the folder of `metrics/<scale>/<benchmark>.json`,
    `train/<scale>.json` (ours) and `pairs.json` (the pair-trained editors)."""
    pairs = json.loads(file.read_text()) if (file := metrics / "pairs.json").is_file() else {}
    rows = []
    for scale in sorted(scales, key=scale_key):
        for test_set, (benchmark, prefix, columns) in TABLES.items():
            ours = metrics / scale / f"{benchmark}.json"
            if not (ours.is_file() and benchmark in pairs.get(scale, {})):
                continue
            training = metrics / "train" / f"{scale}.json"
            sides = {
                "ours": (
                    json.loads(ours.read_text()),
                    json.loads(training.read_text()) if training.is_file() else {},
                ),
                "pairs": (pairs[scale][benchmark], pairs[scale]["train"]),
            }
            for side, (record, trained) in sides.items():
                compute, scores = trained.get("compute", {}), record["scores"]
                setting = "sessions" if test_set == "magicbrush_multi" else "cases"
                rows.append(
                    {
                        "test_set": test_set,
                        "scale": scale,
                        "training_samples": record["training_samples"],
                        "side": side,
                        "method": SIDES[side],
                        "profile": record["profile"],
                        "cases": record[setting],
                        **{c: scores.get(f"{side}/{prefix}{c}") for c in (*columns, *KNOWN)},
                        "train_tflop": compute.get("train_tflop"),
                        "flops_per_sample": compute.get("flops_per_sample"),
                    }
                )
    references = {}
    for test_set, (benchmark, prefix, columns) in TABLES.items():
        largest = [
            scale
            for scale in scales
            if any(r["test_set"] == test_set and r["scale"] == scale for r in rows)
        ]
        if largest:
            record = json.loads((metrics / largest[-1] / f"{benchmark}.json").read_text())
            references[test_set] = [
                {"system": name, "method": label, "scale": largest[-1]}
                | {c: record["scores"].get(f"{name}/{prefix}{c}") for c in (*columns, *KNOWN)}
                for name, label in REFERENCE_ROWS.items()
            ]
    paper = {
        test_set: [
            row
            for row in published.get(test_set, [])
            if row["method"] in PAPER_EDITORS or row.get("samples")
        ]
        for test_set in TABLES
    }
    return Comparison(rows, paper, references)


def verdicts(comparison: Comparison) -> list[dict]:
    """Per test set and metric: at how many scales each side scores better (ties apart)."""
    found = []
    for test_set in TABLES:
        rows = [r for r in comparison.rows if r["test_set"] == test_set]
        scales = sorted({r["scale"] for r in rows}, key=scale_key)
        for column in comparison.columns(test_set):
            ours_wins = pairs_wins = ties = 0
            for scale in scales:
                value = {r["side"]: r[column] for r in rows if r["scale"] == scale}
                if value.get("ours") is None or value.get("pairs") is None:
                    continue
                better = _better(column, value["ours"], value["pairs"])
                ours_wins, pairs_wins = ours_wins + (better > 0), pairs_wins + (better < 0)
                ties += better == 0
            if ours_wins + pairs_wins + ties:
                found.append(
                    {
                        "test_set": test_set,
                        "metric": column,
                        "scales": ours_wins + pairs_wins + ties,
                        "ours_better": ours_wins,
                        "pairs_better": pairs_wins,
                        "ties": ties,
                    }
                )
    return found


def _better(column: str, ours: float, pairs: float) -> int:
    """+1 where ours is better, -1 where the pair-trained editor is, 0 for a tie."""
    sign = -1 if column in LOWER_IS_BETTER else 1
    difference = sign * (ours - pairs)
    return (difference > 0) - (difference < 0)


def comparison_lines(comparison: Comparison, out: Path) -> list[str]:
    """The section of tables.md, pairs.csv, pairs_verdicts.csv and pairs.png."""
    if not comparison.rows:
        return []
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "pairs.csv", comparison.rows)
    judged = verdicts(comparison)
    write_csv(out / "pairs_verdicts.csv", judged)
    _plot(comparison, out / "pairs.png")
    first = comparison.rows[0]
    lines = [
        "## Trained without editing pairs against trained on them",
        "",
        f"Ours trains on each scale's scenes as image + caption; InstructPix2Pix trains on one "
        f"rendered editing pair (source, instruction, target) of each of the same scenes, from "
        f"the same inpainting model's VAE, text encoder and UNet (`dvc.yaml`: pairs). "
        f"Both are scored by the same harness on the same held-out test sets "
        f"({first['profile']} profile; README, Trained on pairs). Region IoU of "
        f"InstructPix2Pix: the pixels it changed beyond the edit-success tolerance. Training "
        f"compute: FLOPs of one step per sample, times the samples seen.",
        "",
        "![pair-free against pair-trained](pairs.png)",
        "",
    ]
    for test_set in TABLES:
        rows = [r for r in comparison.rows if r["test_set"] == test_set]
        if not rows:
            continue
        columns = comparison.columns(test_set)
        body = [
            [
                r["method"],
                r["scale"],
                f"{r['training_samples']:,}",
                *(cell(r[c]) for c in columns),
                "–" if r["train_tflop"] is None else f"{r['train_tflop']:.3g}",
            ]
            for r in sorted(rows, key=lambda r: (r["side"] != "ours", scale_key(r["scale"])))
        ]
        body += [
            [r["method"], r["scale"], "", *(cell(r[c]) for c in columns), ""]
            for r in comparison.references.get(test_set, [])
        ]
        body += [
            [
                f"{p['method']} (published)",
                "",
                f"{p['samples']:,}" if p.get("samples") else "",
                *(_printed(p.get(c)) for c in columns),
                "",
            ]
            for p in comparison.published[test_set]
        ]
        headers = [
            "system",
            "scale",
            "samples",
            *(column_header(c) for c in columns),
            "train TFLOP",
        ]
        lines += [f"### {_title(test_set)}", "", *markdown_table(headers, body, labels=2), ""]
    ours = sum(v["ours_better"] for v in judged)
    theirs = sum(v["pairs_better"] for v in judged)
    total = sum(v["scales"] for v in judged)
    lines += [
        "### Which side wins, metric by metric (scales where it scores better)",
        "",
        f"Over every metric, test set and scale: ours better in {ours} of {total} comparisons, "
        f"the pair-trained editor in {theirs}, {total - ours - theirs} tied. The paper's own "
        "comparison, its largest Ours against each pair-trained editor as printed (metrics "
        "where Ours is better / metrics both report): "
        + "; ".join(_paper_verdicts(comparison))
        + ".",
        "",
        *markdown_table(
            ["test set", "metric", "scales", "ours better", "pairs better", "ties"],
            [
                [
                    _title(v["test_set"]),
                    column_header(v["metric"]),
                    str(v["scales"]),
                    str(v["ours_better"]),
                    str(v["pairs_better"]),
                    str(v["ties"]),
                ]
                for v in judged
            ],
            labels=2,
        ),
        "",
    ]
    return lines


def _paper_verdicts(comparison: Comparison) -> list[str]:
    """Per test set and published editor: on how many of the metrics both print the paper's
    largest Ours is better."""
    found = []
    for test_set, rows in comparison.published.items():
        ours = max((r for r in rows if r.get("samples")), key=lambda r: r["samples"], default=None)
        if ours is None:
            continue
        for editor in (r for r in rows if r["method"] in PAPER_EDITORS):
            shared = [
                c
                for c in TABLES[test_set][2]
                if ours.get(c) is not None and editor.get(c) is not None
            ]
            better = sum(_better(c, ours[c], editor[c]) > 0 for c in shared)
            versus = f"{ours['method']} against {editor['method']}"
            found.append(f"{_title(test_set)}, {versus}: {better}/{len(shared)}")
    return found


def _title(test_set: str) -> str:
    return {
        "emu_edit": "Emu Edit",
        "magicbrush_single": "MagicBrush single-turn",
        "magicbrush_multi": "MagicBrush multi-turn",
    }[test_set]


def _printed(value: float | None) -> str:
    return "" if value is None else str(value)


def _plot(comparison: Comparison, path: Path) -> None:
    """Each PLOTTED metric against the data scale, per test set: ours and the pair-trained
    editor, with the copy of the input and the ceiling as horizontal lines."""
    test_sets = [t for t in TABLES if any(r["test_set"] == t for r in comparison.rows)]
    figure, axes = plt.subplots(
        len(test_sets),
        len(PLOTTED),
        figsize=(3.4 * len(PLOTTED), 2.9 * len(test_sets)),
        squeeze=False,
    )
    for row_axes, test_set in zip(axes, test_sets, strict=True):
        rows = [r for r in comparison.rows if r["test_set"] == test_set]
        scales = sorted({r["scale"] for r in rows}, key=scale_key)
        for axis, metric in zip(row_axes, PLOTTED, strict=True):
            for index, side in enumerate(SIDES):
                points = [
                    (scales.index(r["scale"]), r[metric])
                    for r in rows
                    if r["side"] == side and r[metric] is not None
                ]
                if points:
                    axis.plot(
                        *zip(*points, strict=True),
                        "o-" if side == "ours" else "s--",
                        color=f"C{index + 1}",
                        label=SIDES[side],
                    )
            for reference in comparison.references.get(test_set, []):
                if reference[metric] is not None:
                    ceiling = reference["system"] == "ground_truth"
                    axis.axhline(
                        reference[metric],
                        color="black" if ceiling else "grey",
                        linestyle="-." if ceiling else ":",
                        linewidth=1,
                        label=reference["method"],
                    )
            axis.set_xticks(range(len(scales)), scales)
            axis.set_title(f"{_title(test_set)}: {column_header(metric)}", fontsize=9)
            axis.legend(fontsize=6)
    first = comparison.rows[0]
    figure.suptitle(
        f"Trained without editing pairs against trained on them, per data scale "
        f"({first['profile']} profile, world models; training samples: "
        + ", ".join(
            f"{r['scale']} {r['training_samples']}"
            for r in comparison.rows
            if r["test_set"] == test_sets[0] and r["side"] == "ours"
        )
        + ")",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
