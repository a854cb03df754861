"""reports/tables.md and the CSVs beside it: a section per table, then scaling.csv (DVC plots)
and scaling.png."""

from __future__ import annotations

import csv
from pathlib import Path

from components.evaluation.report import prose
from components.evaluation.report.formatting import cell, column_header, count, markdown_table
from components.evaluation.report.known import KnownAnswers
from components.evaluation.report.plots import plot_scaling
from components.evaluation.report.schema import (
    COLUMNS,
    KNOWN_COLUMNS,
    LABEL_COLUMNS,
    METRIC_MODELS,
    PUBLISHED,
    SCALING_METRICS,
    TABLES,
)
from components.evaluation.report.tables import ours_rows
from components.evaluation.report.verdicts import world_lines


def write_report(
    tables: dict[str, list[dict]],
    out: Path,
    notes: list[str] | tuple[str, ...] = (),
    known: KnownAnswers | None = None,
    world: dict | None = None,
    sections: list[str] | tuple[str, ...] = (),
) -> None:
    """reports/tables.md, a CSV per paper table, known_answers.csv and known_answers_scaling.csv,
    scaling.csv (DVC plots) and scaling.png. `world`: metrics/world.json, where it exists;
    `sections`: markdown lines of further sections (the pair-trained comparison), after the
    known answers."""
    out.mkdir(parents=True, exist_ok=True)
    known = known or KnownAnswers({}, [])
    lines = [
        "# Results",
        "",
        scope(tables),
        "",
        prose.RESULTS_INTRO,
        "",
        *(f"- {note}" for note in notes),
        "",
        *_known_answer_lines(known, out),
        *sections,
        *world_lines(world or {}),
    ]
    for table, rows in tables.items():
        lines += _paper_table_lines(table, rows, out)
    (out / "tables.md").write_text("\n".join(lines), encoding="utf-8")
    write_scaling_csv(tables, known, out)
    plot_scaling(tables, known, out)


def scope(tables: dict[str, list[dict]]) -> str:
    """One sentence: what the measured numbers can and cannot show."""
    ours = [r for t in TABLES for r in tables[t] if r["source"] == "this run"]
    if not ours:
        return prose.SCOPE_NOTHING
    kinds = {r["models"] for r in ours}
    cases = sorted({r["cases"] for r in ours if r["cases"] is not None})
    counted = f"{min(cases)}–{max(cases)}" if len(cases) > 1 else f"{cases[0] if cases else 0}"
    profiles = ", ".join(sorted({r["profile"] for r in ours}))
    if any(kind.startswith("world models") for kind in kinds):
        template = prose.SCOPE_WORLD
    elif "random models" in kinds:
        template = prose.SCOPE_RANDOM
    elif kinds == {"real checkpoints"}:
        template = prose.SCOPE_REAL
    else:
        template = prose.SCOPE_LOCAL
    return template.format(profiles=profiles, counted=counted)


def metric_notes(summaries: dict[str, dict[str, dict]]) -> list[str]:
    """Which models scored each benchmark (Emu Edit's CLIP is an assumption)."""
    notes = []
    for benchmark in ("emu_edit", "magicbrush"):
        record = next((b[benchmark] for b in summaries.values() if benchmark in b), None)
        if record is None or "metric_models" not in record:
            continue
        m = record["metric_models"]
        clip = f"{m['clip']}" + (f" ({m['clip_pretrained']})" if m.get("clip_pretrained") else "")
        notes.append(
            prose.METRIC_NOTE.format(
                benchmark=benchmark,
                clip=clip,
                kind=m.get("clip_weights", "unknown"),
                dino=m["dino"],
                why=prose.METRIC_MODELS_WHY[benchmark],
            )
        )
    return notes


def write_csv(path: Path, rows: list[dict]) -> None:
    """Rows as CSV, the columns in the order their keys first appear."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)


def write_scaling_csv(tables: dict[str, list[dict]], known: KnownAnswers, out: Path) -> None:
    """Ours' paper metrics and known-answer metrics per scale, long (DVC plots: x samples)."""
    with (out / "scaling.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["samples", "scale", "table", "metric", "value"])
        for table in TABLES:
            for row in ours_rows(tables[table]):
                for column in TABLES[table][2]:
                    if row[column] is not None:
                        writer.writerow(
                            [row["training_samples"], row["scale"], table, column, row[column]]
                        )
        for row in known.scaling:
            for metric in SCALING_METRICS:
                if (value := row[f"ours_{metric}"]) is not None:
                    writer.writerow(
                        [row["training_samples"], row["scale"], row["test_set"], metric, value]
                    )


def _paper_table_lines(table: str, rows: list[dict], out: Path) -> list[str]:
    """One of the paper's tables in markdown, with its CSV written beside it."""
    columns = COLUMNS[table]
    with (out / f"{table}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [*LABEL_COLUMNS, *columns, "note"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    randoms = [c for c in columns if any(c in row.get("random", ()) for row in rows)]
    mark = f" {prose.RANDOM_MARK}"
    headers = [column_header(c) + (mark if c in randoms else "") for c in columns]
    body = [
        [
            row["method"] + (" †" if row.get("note") else ""),
            row["source"],
            row["scale"] or "",
            count(row),
            *(cell(row[c], printed=row["source"] == "published") for c in columns),
        ]
        for row in rows
    ]
    lines = [
        f"## {prose.TITLES[table]}",
        "",
        *markdown_table(["method", "source", "scale", "cases", *headers], body, labels=3),
        "",
        *(f"† {row['method']}: {row['note']}" for row in rows if row.get("note")),
        *prose.NOTES.get(table, []),
    ]
    if randoms:
        lines.append(_random_note(randoms))
    if table == "emu_edit_ablation" and all(row["source"] == "published" for row in rows):
        lines.append(prose.NO_ABLATION)
    if not any(row["source"] == "published" for row in rows) and table in TABLES:
        lines.append(prose.NO_PUBLISHED.format(file=PUBLISHED.name))
    return [*lines, ""]


def _random_note(metrics: list[str]) -> str:
    models = " and ".join(sorted({METRIC_MODELS[m] for m in metrics}))
    return prose.RANDOM_NOTE.format(
        mark=prose.RANDOM_MARK, metrics=", ".join(metrics), models=models
    )


def _known_answer_lines(known: KnownAnswers, out: Path) -> list[str]:
    """Every system on each test set at its largest scale, then ours per scale against the best
    trivial baseline and the ceiling; both also as CSV."""
    if not known.tables:
        return []
    write_csv(out / "known_answers.csv", [r for rows in known.tables.values() for r in rows])
    write_csv(out / "known_answers_scaling.csv", known.scaling)
    lines = [prose.KNOWN_HEADING, "", prose.KNOWN_INTRO, ""]
    for test_set, rows in known.tables.items():
        first = rows[0]
        body = [[row["method"], *(cell(row[c]) for c in KNOWN_COLUMNS)] for row in rows]
        lines += [
            f"### {prose.KNOWN_TITLES[test_set]}: scale {first['scale']} "
            f"({first['training_samples']:,} training samples, {count(first)} cases)",
            "",
            *markdown_table(["system", *(prose.HEADERS[c] for c in KNOWN_COLUMNS)], body),
            "",
        ]
        if all(row["region_iou"] is None for row in rows):
            lines += [prose.NO_REGIONS, ""]
    headers = [h for m in SCALING_METRICS for h in _scaling_headers(m)]
    body = [
        [
            prose.KNOWN_TITLES[row["test_set"]],
            row["scale"],
            f"{row['training_samples']:,}",
            *(value for m in SCALING_METRICS for value in _scaling_cells(row, m)),
        ]
        for row in known.scaling
    ]
    return [
        *lines,
        prose.SCALING_HEADING,
        "",
        *markdown_table(["test set", "scale", "training samples", *headers], body, labels=2),
        "",
    ]


def _scaling_headers(metric: str) -> list[str]:
    return [f"{who} {prose.HEADERS[metric]}" for who in ("ours", "best trivial", "ceiling")]


def _scaling_cells(row: dict, metric: str) -> list[str]:
    trivial = row[f"best_trivial_{metric}_system"]
    named = f" ({prose.REFERENCES[trivial]})" if trivial else ""
    best = cell(row[f"best_trivial_{metric}"]) + named
    return [cell(row[f"ours_{metric}"]), best, cell(row[f"ceiling_{metric}"])]
