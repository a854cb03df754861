"""The paper's Tables 2-3 and a scaling plot, from each scale's evaluation scores.

Table 2 (Emu Edit): CLIP_dir, CLIP_img, CLIP_out, L1, DINO. Table 3 (MagicBrush): L1, L2,
CLIP-I, DINO, CLIP-T, single- and multi-turn. A row per scale (ours) and one for the
baseline evaluated in the same harness; published rows come from `published.yaml`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

PUBLISHED = Path(__file__).with_name("published.yaml")
EMU_EDIT_COLUMNS = ("clip_dir", "clip_img", "clip_out", "l1", "dino")
TABLES = {  # table -> (benchmark, score prefix under each system, metric columns)
    "emu_edit": ("emu_edit", "", EMU_EDIT_COLUMNS),
    "magicbrush_single": ("magicbrush", "single/", ("l1", "l2", "clip_i", "dino", "clip_t")),
    "magicbrush_multi": ("magicbrush", "multi/", ("l1", "l2", "clip_i", "dino", "clip_t")),
}
TITLES = {
    "emu_edit": "Table 2: Emu Edit test set",
    "emu_edit_tasks": "Table 2, per task: Emu Edit test set",
    "magicbrush_single": "Table 3: MagicBrush test set, single-turn",
    "magicbrush_multi": "Table 3: MagicBrush test set, multi-turn",
}
COLUMNS = {table: spec[2] for table, spec in TABLES.items()} | {"emu_edit_tasks": EMU_EDIT_COLUMNS}
LOWER_IS_BETTER = {"l1", "l2"}


def table_rows(
    scores: dict[str, dict[str, dict[str, float]]],
    counts: dict[str, int],
    published: dict[str, list[dict]],
) -> dict[str, list[dict]]:
    """scores[scale][benchmark] = the evaluation's flat scores -> rows per table."""
    tables = {}
    for table, (benchmark, prefix, columns) in TABLES.items():
        rows = []
        for scale, benchmarks in scores.items():
            flat = benchmarks.get(benchmark)
            if flat is not None:
                rows.append(
                    {
                        "method": f"ours ({scale})",
                        "source": "this run",
                        "samples": counts[scale],
                        **{c: flat.get(f"ours/{prefix}{c}") for c in columns},
                    }
                )
        baseline = next((b[benchmark] for b in scores.values() if benchmark in b), None)
        if baseline is not None:  # the same for every scale: it has no head
            rows.append(
                {
                    "method": "InstructPix2Pix (same harness)",
                    "source": "this run",
                    "samples": None,
                    **{c: baseline.get(f"baseline/{prefix}{c}") for c in columns},
                }
            )
        for row in published.get(table) or []:
            rows.append(
                {
                    "method": row["method"],
                    "source": "published",
                    "samples": None,
                    **{c: row.get(c) for c in columns},
                }
            )
        tables[table] = rows
    tables["emu_edit_tasks"] = _task_rows(scores, counts)
    return tables


def _task_rows(
    scores: dict[str, dict[str, dict[str, float]]], counts: dict[str, int]
) -> list[dict]:
    """Emu Edit per task, for every scale and the baseline: `<system>/<task>/<metric>` scores."""
    rows = []
    for scale, benchmarks in scores.items():
        flat = benchmarks.get("emu_edit", {})
        systems = [("ours", f"ours ({scale})")]
        if not rows:  # the baseline has no head: once is enough
            systems.append(("baseline", "InstructPix2Pix (same harness)"))
        for system, label in systems:
            tasks = sorted(
                {
                    name.split("/")[1]
                    for name in flat
                    if name.startswith(f"{system}/") and name.count("/") == 2
                }
            )
            rows += [
                {
                    "method": f"{label} · {task}",
                    "source": "this run",
                    "samples": counts[scale] if system == "ours" else None,
                    **{c: flat.get(f"{system}/{task}/{c}") for c in EMU_EDIT_COLUMNS},
                }
                for task in tasks
            ]
    return rows


def load_published() -> dict[str, list[dict]]:
    return yaml.safe_load(PUBLISHED.read_text()) or {}


def write_report(tables: dict[str, list[dict]], out: Path) -> None:
    """reports/tables.md, a CSV per table, scaling.csv (DVC plots) and scaling.png."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Results",
        "",
        "Published rows are marked as such; all others were measured by "
        "`dvc repro` with the models named in params.yaml.",
        "",
    ]
    for table, rows in tables.items():
        columns = COLUMNS[table]
        with (out / f"{table}.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, ["method", "source", "samples", *columns])
            writer.writeheader()
            writer.writerows(rows)
        arrows = [f"{c} {'↓' if c in LOWER_IS_BETTER else '↑'}" for c in columns]
        lines += [
            f"## {TITLES[table]}",
            "",
            "| method | source | " + " | ".join(arrows) + " |",
            "|---|---|" + "---:|" * len(columns),
        ]
        lines += [
            "| "
            + " | ".join([row["method"], row["source"], *(_cell(row[c]) for c in columns)])
            + " |"
            for row in rows
        ]
        if not any(row["source"] == "published" for row in rows):
            lines.append(f"\n(No published numbers in {PUBLISHED.name} for this table.)")
        lines.append("")
    (out / "tables.md").write_text("\n".join(lines), encoding="utf-8")
    _scaling(tables, out)


def _scaling(tables: dict[str, list[dict]], out: Path) -> None:
    ours = {table: [r for r in tables[table] if r["method"].startswith("ours")] for table in TABLES}
    with (out / "scaling.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["samples", "table", "metric", "value"])
        for table, rows in ours.items():
            for row in rows:
                for column in TABLES[table][2]:
                    if row[column] is not None:
                        writer.writerow([row["samples"], table, column, row[column]])
    panels = [(table, column) for table in TABLES for column in TABLES[table][2]]
    figure, axes = plt.subplots(3, 5, figsize=(17, 9), squeeze=False)
    for axis, (table, column) in zip(axes.flat, panels, strict=True):
        points = [(r["samples"], r[column]) for r in ours[table] if r[column] is not None]
        if points:
            axis.plot(*zip(*sorted(points), strict=True), marker="o")
        axis.set_title(f"{table}: {column}", fontsize=9)
        axis.set_xlabel("training samples")
    figure.suptitle("Metrics against training-data scale")
    figure.tight_layout()
    figure.savefig(out / "scaling.png", dpi=100)
    plt.close(figure)


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"
