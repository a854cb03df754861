"""The rows of the paper's Tables 2-4: ours per scale, InstructPix2Pix and the copy of the input
in the same harness, each labelled with what ran, then the published rows (`published.yaml`)."""

from __future__ import annotations

import yaml

from components.evaluation.report.prose import LOSS_TERMS, SYSTEM_LABELS
from components.evaluation.report.schema import (
    ABLATION_KNOWN,
    COLUMNS,
    EMU_EDIT_COLUMNS,
    METRIC_MODELS,
    PUBLISHED,
    TABLES,
)
from components.models.provenance import RANDOM


def load_published() -> dict[str, list[dict]]:
    return yaml.safe_load(PUBLISHED.read_text()) or {}


def report_tables(
    summaries: dict[str, dict[str, dict]],
    published: dict[str, list[dict]],
    ablations: dict[str, dict] | None = None,
    ablation_scale: str | None = None,
) -> dict[str, list[dict]]:
    """summaries[scale][benchmark] = the evaluation's record (metrics/<scale>/<benchmark>.json:
    its scores and what ran) -> rows per table, measured rows first. `ablations[name]`: a loss
    ablation's Emu Edit record (metrics/ablations/<name>/emu_edit.json), trained at
    `ablation_scale`, whose own record is the full method's row of Table 4."""
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
    full = summaries.get(ablation_scale or "", {}).get("emu_edit")
    measured = [_ablation_row(record) for record in (ablations or {}).values()]
    if measured and full is not None:
        measured.append(_ablation_row(full))
    tables["emu_edit_ablation"] = measured + _published(
        published.get("emu_edit_ablation"), COLUMNS["emu_edit_ablation"]
    )
    return tables


def ours_rows(rows: list[dict]) -> list[dict]:
    """The measured rows of ours (one per scale) among a table's rows."""
    return [r for r in rows if r["source"] == "this run" and r["scale"] is not None]


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
    return SYSTEM_LABELS[system]


def random_metrics(record: dict) -> list[str]:
    """The paper metrics of `record` scored by a model with random weights: their numbers show
    only that the code runs, and every table that prints them says so."""
    kinds = {
        "CLIP": record.get("metric_models", {}).get("clip_weights"),
        "DINO": record.get("weights", {}).get("dino"),
    }
    return [metric for metric, model in METRIC_MODELS.items() if kinds[model] == RANDOM]


def cases(prefix: str, record: dict) -> int | None:
    """Emu Edit's cases or MagicBrush's turns; multi-turn scores one final turn per session."""
    return record.get("sessions") if prefix == "multi/" else record.get("cases")


def _ablation_row(record: dict) -> dict:
    """Table 4's row of one ablation's record (or of the full method's, without one)."""
    ablation = record.get("ablation")
    without = (
        "w/o " + ", ".join(LOSS_TERMS[w] for w in ablation["zeroed"]) if ablation else "all losses"
    )
    row = _measured("ours", "", EMU_EDIT_COLUMNS, record["scale"], record)
    scores = record["scores"]
    return row | {
        "method": f"ours, {without} ({row['method'].removeprefix('ours (')}",
        **{column: scores.get(f"ours/{key}") for column, key in ABLATION_KNOWN.items()},
    }


def _measured(system: str, prefix: str, columns: tuple, scale: str, record: dict) -> dict:
    scores = record["scores"]
    return {
        "method": row_label(system, record),
        "source": "this run",
        "profile": record["profile"],
        "scale": scale if system == "ours" else None,
        "training_samples": record["training_samples"] if system == "ours" else None,
        "models": record["models"]["ours" if system == "copy" else system],
        "cases": cases(prefix, record),
        "random": random_metrics(record),
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
            - {"distractor", "no distractor"}  # the region metrics' groups, not tasks
        )
        for task in tasks:
            row = _measured(system, "", (), scale, record)
            row["method"] = f"{row['method']} · {task}"
            row["cases"] = None
            rows.append(row | {c: scores.get(f"{system}/{task}/{c}") for c in COLUMNS["emu_edit"]})
    return rows
