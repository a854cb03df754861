"""The paper's Tables 2-4 beside ours, and a scaling plot, from each scale's evaluation record.

Table 2 (Emu Edit): CLIP_dir, CLIP_out, L1, CLIP_img, DINO. Table 3 (MagicBrush): L1, L2,
CLIP-I, DINO, CLIP-T, single- and multi-turn. Table 4 (loss ablation, Emu Edit). Measured rows:
ours per scale, InstructPix2Pix and the copy of the input (the trivial system), all in the same
harness, each labelled with its profile, training samples and whether its models are real
checkpoints or random; ours adds its mean region fraction, share of empty regions and, on
MagicBrush, region IoU. Published rows come from `published.yaml`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

PUBLISHED = Path(__file__).with_name("published.yaml")
EMU_EDIT_COLUMNS = ("clip_dir", "clip_out", "l1", "clip_img", "dino")  # Table 2's order
MAGICBRUSH_COLUMNS = ("l1", "l2", "clip_i", "dino", "clip_t")
REGION_COLUMNS = ("region_fraction", "empty_region")
TABLES = {  # table -> (benchmark, score prefix under each system, paper's metric columns)
    "emu_edit": ("emu_edit", "", EMU_EDIT_COLUMNS),
    "magicbrush_single": ("magicbrush", "single/", MAGICBRUSH_COLUMNS),
    "magicbrush_multi": ("magicbrush", "multi/", MAGICBRUSH_COLUMNS),
}
TITLES = {
    "emu_edit": "Table 2: Emu Edit test set",
    "emu_edit_tasks": "Table 2, per task: Emu Edit test set",
    "magicbrush_single": "Table 3: MagicBrush test set, single-turn",
    "magicbrush_multi": "Table 3: MagicBrush test set, multi-turn",
    "emu_edit_ablation": "Table 4: loss ablation, Emu Edit test set",
}
COLUMNS = {
    "emu_edit": (*EMU_EDIT_COLUMNS, *REGION_COLUMNS),
    "emu_edit_tasks": (*EMU_EDIT_COLUMNS, *REGION_COLUMNS),
    "magicbrush_single": (*MAGICBRUSH_COLUMNS, *REGION_COLUMNS, "region_iou"),
    "magicbrush_multi": (*MAGICBRUSH_COLUMNS, *REGION_COLUMNS, "region_iou"),
    "emu_edit_ablation": EMU_EDIT_COLUMNS,
}
LABEL_COLUMNS = ("method", "source", "profile", "scale", "training_samples", "models", "cases")
LOWER_IS_BETTER = {"l1", "l2"}
HEADERS = {  # descriptions of ours' region, not scores: no arrow
    "region_fraction": "region fraction",
    "empty_region": "empty-region share",
    "region_iou": "region IoU ↑",
}
NOTES = {
    "magicbrush_single": [
        "CLIP-T: cos(CLIP image of the edit, CLIP text of the ground truth's description from "
        "the test set's description file), as MagicBrush's `image_eval.py`; the paper prints "
        "no CLIP-T.",
        "region_iou: our region against MagicBrush's own mask of the turn (white = edited); "
        "no published system reports it.",
    ],
    "emu_edit_ablation": [
        "No ablation run exists in this pipeline yet (no training profile drops a loss): only "
        "the published rows are shown.",
    ],
}
NOTES["magicbrush_multi"] = NOTES["magicbrush_single"]


def report_tables(
    summaries: dict[str, dict[str, dict]], published: dict[str, list[dict]]
) -> dict[str, list[dict]]:
    """summaries[scale][benchmark] = the evaluation's record (metrics/<scale>/<benchmark>.json:
    its scores and what ran) -> rows per table, measured rows first."""
    tables = {}
    for table, (benchmark, prefix, _) in TABLES.items():
        columns = COLUMNS[table]
        records = [(s, b[benchmark]) for s, b in summaries.items() if benchmark in b]
        rows = [_measured("ours", prefix, columns, scale, r) for scale, r in records]
        if records:  # the baseline and the copy have no head: the same for every scale
            rows += [
                _measured(system, prefix, columns, *records[0]) for system in ("baseline", "copy")
            ]
        tables[table] = rows + _published(published.get(table), columns)
    tables["emu_edit_tasks"] = _task_rows(summaries)
    tables["emu_edit_ablation"] = _published(published.get("emu_edit_ablation"), EMU_EDIT_COLUMNS)
    return tables


def row_label(system: str, record: dict) -> str:
    """What ran, in the row's own name: never just "ours (1M)"."""
    models = record["models"]
    if system == "ours":
        head = "" if record.get("head_state", "trained") == "trained" else ", untrained head"
        return (
            f"ours ({record['profile']} profile, {record['training_samples']:,} training "
            f"samples, {models['ours']}{head})"
        )
    if system == "baseline":
        steps = record.get("baseline_settings", {}).get("steps")
        return f"InstructPix2Pix, same harness ({models['baseline']}, {steps} steps)"
    return "copy of the input (trivial system), same harness"


def _measured(system: str, prefix: str, columns: tuple, scale: str, record: dict) -> dict:
    scores = record["scores"]
    return {
        "method": row_label(system, record),
        "source": "this run",
        "profile": record["profile"],
        "scale": scale if system == "ours" else None,
        "training_samples": record["training_samples"] if system == "ours" else None,
        "models": record["models"]["ours" if system == "copy" else system],
        "cases": record.get("sessions") if prefix == "multi/" else record.get("cases"),
        **{c: scores.get(f"{system}/{prefix}{c}") for c in columns},
    }


def _published(rows: list[dict] | None, columns: tuple) -> list[dict]:
    return [
        {
            "method": f"{row['method']} (paper)",
            "source": "published",
            "profile": None,
            "scale": None,
            "training_samples": row.get("samples"),
            "models": None,
            "cases": None,
            "note": row.get("note"),
            **{c: row.get(c) for c in columns},
        }
        for row in rows or []
    ]


def _task_rows(summaries: dict[str, dict[str, dict]]) -> list[dict]:
    """Emu Edit per task: every scale's ours, then the baseline and the copy once."""
    rows = []
    records = [(s, b["emu_edit"]) for s, b in summaries.items() if "emu_edit" in b]
    systems = [("ours", scale, record) for scale, record in records]
    if records:
        systems += [(system, *records[0]) for system in ("baseline", "copy")]
    for system, scale, record in systems:
        scores = record["scores"]
        tasks = sorted(
            {n.split("/")[1] for n in scores if n.startswith(f"{system}/") and n.count("/") == 2}
        )
        for task in tasks:
            row = _measured(system, "", (), scale, record)
            row["method"] = f"{row['method']} · {task}"
            row["cases"] = None
            rows.append(row | {c: scores.get(f"{system}/{task}/{c}") for c in COLUMNS["emu_edit"]})
    return rows


def load_published() -> dict[str, list[dict]]:
    return yaml.safe_load(PUBLISHED.read_text()) or {}


def scope(tables: dict[str, list[dict]]) -> str:
    """One sentence: what the measured numbers can and cannot show."""
    ours = [r for t in TABLES for r in tables[t] if r["source"] == "this run"]
    if not ours:
        return "Nothing was measured: only the paper's published rows are shown."
    kinds = {r["models"] for r in ours}
    cases = sorted({r["cases"] for r in ours if r["cases"] is not None})
    counted = f"{min(cases)}–{max(cases)}" if len(cases) > 1 else f"{cases[0] if cases else 0}"
    profiles = ", ".join(sorted({r["profile"] for r in ours}))
    if "random models" in kinds:
        return (
            f"The measured rows ({profiles} profile) come from randomly initialised models on "
            f"{counted} benchmark cases each: they show that every code path runs and how the "
            "harness scores the trivial copy, and nothing about how well any method edits; "
            "only the rows marked published are the paper's numbers."
        )
    if kinds == {"real checkpoints"}:
        return (
            f"The measured rows ({profiles} profile) use real checkpoints on {counted} cases "
            "each: they compare systems within this harness, and compare with the published "
            "rows only as far as the data, split and metric models match the paper's (the "
            "assumptions are stated under the tables)."
        )
    return (
        f"The measured rows ({profiles} profile) use models from local folders (not the "
        f"paper's checkpoints) on {counted} cases each: they compare systems within this "
        "harness, not with the paper's published rows."
    )


def metric_notes(summaries: dict[str, dict[str, dict]]) -> list[str]:
    """Which models scored each benchmark (Emu Edit's CLIP is an assumption)."""
    notes = []
    for benchmark in ("emu_edit", "magicbrush"):
        record = next((b[benchmark] for b in summaries.values() if benchmark in b), None)
        if record is None or "metric_models" not in record:
            continue
        m = record["metric_models"]
        clip = f"{m['clip']}" + (f" ({m['clip_pretrained']})" if m.get("clip_pretrained") else "")
        kind = m.get("clip_weights", "unknown")
        why = (
            "an assumption: neither Emu Edit's paper nor this paper names the CLIP that scores "
            "Emu Edit (evaluate.emu_edit_clip overrides it)"
            if benchmark == "emu_edit"
            else "MagicBrush's evaluation uses CLIP ViT-B/32 and DINO ViT-S/16"
        )
        notes.append(f"{benchmark}: CLIP {clip} ({kind} weights), DINO {m['dino']}; {why}.")
    return notes


def write_report(
    tables: dict[str, list[dict]], out: Path, notes: list[str] | tuple[str, ...] = ()
) -> None:
    """reports/tables.md, a CSV per table, scaling.csv (DVC plots) and scaling.png."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Results",
        "",
        scope(tables),
        "",
        "Rows marked `published` are copied from the paper as printed; all others were measured "
        "by `dvc repro` with the models named in params.yaml. The copy of the input changes "
        "nothing: it bounds what L1, CLIP_img/CLIP-I and DINO can reward, since ours keeps "
        "every pixel outside its region.",
        "",
        *(f"- {note}" for note in notes),
        "",
    ]
    for table, rows in tables.items():
        columns = COLUMNS[table]
        with (out / f"{table}.csv").open("w", newline="") as handle:
            fields = [*LABEL_COLUMNS, *columns, "note"]
            writer = csv.DictWriter(handle, fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        arrows = [_header(c) for c in columns]
        lines += [
            f"## {TITLES[table]}",
            "",
            "| method | source | scale | cases | " + " | ".join(arrows) + " |",
            "|---|---|---|---:|" + "---:|" * len(columns),
        ]
        for row in rows:
            marker = " †" if row.get("note") else ""
            cells = [row["method"] + marker, row["source"], row["scale"] or "", _count(row)]
            values = [_cell(row[c], printed=row["source"] == "published") for c in columns]
            lines.append("| " + " | ".join([*cells, *values]) + " |")
        lines.append("")
        lines += [f"† {row['method']}: {row['note']}" for row in rows if row.get("note")]
        lines += NOTES.get(table, [])
        if not any(row["source"] == "published" for row in rows) and table in TABLES:
            lines.append(f"(No published numbers in {PUBLISHED.name} for this table.)")
        lines.append("")
    (out / "tables.md").write_text("\n".join(lines), encoding="utf-8")
    _scaling(tables, out)


def _scaling(tables: dict[str, list[dict]], out: Path) -> None:
    """Each paper metric against the data scale: ours beside the paper's Ours (1M…5M); a panel
    without data is left out."""
    with (out / "scaling.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["samples", "scale", "table", "metric", "value"])
        for table in TABLES:
            for row in _ours(tables[table]):
                for column in TABLES[table][2]:
                    if row[column] is not None:
                        writer.writerow(
                            [row["training_samples"], row["scale"], table, column, row[column]]
                        )
    panels = []
    for table, (_, _, columns) in TABLES.items():
        for column in columns:
            ours = [
                (r["scale"], r[column], r) for r in _ours(tables[table]) if r[column] is not None
            ]
            paper = [
                (f"{r['training_samples'] // 1_000_000}M", r[column])
                for r in tables[table]
                if r["source"] == "published" and r["training_samples"] and r[column] is not None
            ]
            if ours or paper:
                panels.append((table, column, ours, paper))
    if not panels:
        return _empty_plot(out)
    width = min(5, len(panels))
    rows = -(-len(panels) // width)
    figure, axes = plt.subplots(rows, width, figsize=(3.6 * width, 3.2 * rows), squeeze=False)
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    for axis, (table, column, ours, paper) in zip(axes.flat, panels, strict=False):
        scales = sorted({s for s, *_ in ours} | {s for s, _ in paper}, key=_scale_order)
        where = {s: i for i, s in enumerate(scales)}
        if paper:
            x, y = [where[s] for s, _ in paper], [v for _, v in paper]
            axis.plot(x, y, "s--", color="C0", label="paper (published)")
        if ours:
            x, y = [where[s] for s, *_ in ours], [v for _, v, _ in ours]
            axis.plot(x, y, "o-", color="C1", label="ours (this run)")
            for s, v, row in ours:
                axis.annotate(str(row["training_samples"]), (where[s], v), fontsize=7)
        axis.set_xticks(range(len(scales)), scales)
        axis.set_title(f"{table}: {column}", fontsize=9)
        axis.legend(fontsize=7)
    figure.suptitle(_plot_title(tables), fontsize=10)
    figure.tight_layout()
    figure.savefig(out / "scaling.png", dpi=100)
    plt.close(figure)
    return None


def _plot_title(tables: dict[str, list[dict]]) -> str:
    ours = [r for t in TABLES for r in _ours(tables[t])]
    if not ours:
        return "The paper's Ours (1M…5M), published; nothing measured"
    first = ours[0]
    return (
        f"Metrics against training-data scale. paper: published, 1M…5M samples; ours: "
        f"{first['profile']} profile, {first['models']}, sample counts at the points"
    )


def _empty_plot(out: Path) -> None:
    figure, axis = plt.subplots(figsize=(5, 2))
    axis.axis("off")
    axis.text(0.5, 0.5, "no measured or published scaling data", ha="center")
    figure.savefig(out / "scaling.png", dpi=100)
    plt.close(figure)


def _ours(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["source"] == "this run" and r["scale"] is not None]


def _scale_order(scale: str) -> tuple[float, str]:
    number = scale.rstrip("MKk")
    return (float(number), scale) if number.replace(".", "", 1).isdigit() else (float("inf"), scale)


def _header(column: str) -> str:
    if column in HEADERS:
        return HEADERS[column]
    return f"{column} {'↓' if column in LOWER_IS_BETTER else '↑'}"


def _count(row: dict) -> str:
    return "" if row["cases"] is None else str(row["cases"])


def _cell(value: float | None, printed: bool = False) -> str:
    """A measured value to 4 decimals; a published one exactly as the paper prints it."""
    if value is None:
        return "–"
    return str(value) if printed else f"{value:.4f}"
