"""The world's known answers (DESIGN §10): every system's region overlap and edit success on
each test set, beside the trivial baselines and the ceiling, so that no number looks good alone."""

from __future__ import annotations

from dataclasses import dataclass

from components.evaluation.report.formatting import scale_key
from components.evaluation.report.schema import (
    CEILING,
    KNOWN_COLUMNS,
    KNOWN_SYSTEMS,
    SCALING_METRICS,
    TABLES,
    TRIVIAL,
)
from components.evaluation.report.tables import cases, row_label


@dataclass
class KnownAnswers:
    """The known-answer tables of the world's test sets (DESIGN §10)."""

    tables: dict[str, list[dict]]  # test set (a TABLES key) -> a row per system, largest scale
    scaling: list[dict]  # per test set and scale: ours, the best trivial baseline, the ceiling


def known_answers(summaries: dict[str, dict[str, dict]]) -> KnownAnswers:
    """Every system on each test set at the largest scale evaluated, and ours at every scale
    beside the best trivial baseline and the ceiling of that scale's evaluation."""
    tables, scaling = {}, []
    for test_set, (benchmark, _, _) in TABLES.items():
        records = sorted(
            ((s, b[benchmark]) for s, b in summaries.items() if benchmark in b),
            key=lambda item: scale_key(item[0]),
        )
        if records:
            tables[test_set] = list(_systems(test_set, *records[-1]).values())
            scaling += [_scaling_row(test_set, scale, record) for scale, record in records]
    return KnownAnswers(tables, scaling)


def _systems(test_set: str, scale: str, record: dict) -> dict[str, dict]:
    """A known-answer row per system scored on `test_set`, by system."""
    prefix, scores = TABLES[test_set][1], record["scores"]
    return {
        system: {
            "test_set": test_set,
            "system": system,
            "method": row_label(system, record),
            "scale": scale,
            "training_samples": record["training_samples"],
            "cases": cases(prefix, record),
            **{c: scores.get(f"{system}/{prefix}{key}") for c, key in KNOWN_COLUMNS.items()},
        }
        for system in KNOWN_SYSTEMS
        if any(name.startswith(f"{system}/{prefix}") for name in scores)
    }


def _scaling_row(test_set: str, scale: str, record: dict) -> dict:
    """Ours against the best trivial baseline (named) and the ceiling, at one scale."""
    systems = _systems(test_set, scale, record)
    row = {"test_set": test_set, "scale": scale, "training_samples": record["training_samples"]}
    for metric in SCALING_METRICS:
        trivial = [
            (systems[s][metric], s)
            for s in TRIVIAL
            if s in systems and systems[s][metric] is not None
        ]
        best, name = max(trivial, default=(None, None))
        row |= {
            f"ours_{metric}": systems.get("ours", {}).get(metric),
            f"best_trivial_{metric}": best,
            f"best_trivial_{metric}_system": name,
            f"ceiling_{metric}": systems.get(CEILING, {}).get(metric),
        }
    return row
