"""scaling.png: the world's known answers and each paper metric against the data scale, ours
beside the paper's Ours (1M…5M) or the trivial baselines and the ceiling."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from components.evaluation.report.formatting import scale_key  # noqa: E402
from components.evaluation.report.known import KnownAnswers  # noqa: E402
from components.evaluation.report.prose import (  # noqa: E402
    PLOT_EMPTY,
    PLOT_TITLE,
    PLOT_TITLE_NOTHING,
    RANDOM_PANEL,
    REFERENCES,
)
from components.evaluation.report.schema import (  # noqa: E402
    CEILING,
    PLOTTED,
    SCALING_METRICS,
    TABLES,
)
from components.evaluation.report.tables import ours_rows  # noqa: E402


@dataclass
class Panel:
    """One plot of scaling.png: ours per scale, the paper's, and horizontal reference lines."""

    title: str
    ours: list[tuple[str, float, int]]  # (scale, value, training samples)
    paper: list[tuple[str, float]] = field(default_factory=list)  # (scale, value)
    references: list[tuple[str, float]] = field(default_factory=list)  # (system, value)


def plot_scaling(tables: dict[str, list[dict]], known: KnownAnswers, out: Path) -> None:
    """out/scaling.png; a panel without data is left out."""
    panels = _known_panels(known) + _paper_panels(tables)
    if not panels:
        return _empty_plot(out)
    width = min(5, len(panels))
    rows = -(-len(panels) // width)
    figure, axes = plt.subplots(rows, width, figsize=(3.6 * width, 3.2 * rows), squeeze=False)
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    for axis, panel in zip(axes.flat, panels, strict=False):
        _draw(axis, panel)
    figure.suptitle(_plot_title(tables), fontsize=10)
    figure.tight_layout()
    figure.savefig(out / "scaling.png", dpi=100)
    plt.close(figure)
    return None


def _known_panels(known: KnownAnswers) -> list[Panel]:
    """Ours' region IoU and edit success on PLOTTED per scale; the trivial baselines and the
    ceiling, from the largest scale's evaluation, as horizontal lines."""
    systems = known.tables.get(PLOTTED, [])
    panels = []
    for metric in SCALING_METRICS:
        ours = [
            (row["scale"], row[f"ours_{metric}"], row["training_samples"])
            for row in known.scaling
            if row["test_set"] == PLOTTED and row[f"ours_{metric}"] is not None
        ]
        references = [
            (row["system"], row[metric])
            for row in systems
            if row["system"] in REFERENCES and row[metric] is not None
        ]
        if ours or references:
            title = f"world, {PLOTTED}: {metric}\n(lines: scale {systems[0]['scale']}'s systems)"
            panels.append(Panel(title, ours, references=references))
    return panels


def _paper_panels(tables: dict[str, list[dict]]) -> list[Panel]:
    """Each paper metric: ours per scale and the paper's Ours (1M…5M), noted where the metric's
    model is random."""
    panels = []
    for table, (_, _, columns) in TABLES.items():
        measured = ours_rows(tables[table])
        for column in columns:
            ours = [
                (r["scale"], r[column], r["training_samples"])
                for r in measured
                if r[column] is not None
            ]
            paper = [
                (f"{r['training_samples'] // 1_000_000}M", r[column])
                for r in tables[table]
                if r["source"] == "published" and r["training_samples"] and r[column] is not None
            ]
            random = any(column in r.get("random", ()) for r in measured)
            title = f"{table}: {column}" + (RANDOM_PANEL if random else "")
            if ours or paper:
                panels.append(Panel(title, ours, paper))
    return panels


def _draw(axis: plt.Axes, panel: Panel) -> None:
    scales = sorted({s for s, *_ in panel.ours} | {s for s, _ in panel.paper}, key=scale_key)
    where = {s: i for i, s in enumerate(scales)}
    if panel.paper:
        x, y = [where[s] for s, _ in panel.paper], [v for _, v in panel.paper]
        axis.plot(x, y, "s--", color="C0", label="paper (published)")
    if panel.ours:
        x, y = [where[s] for s, *_ in panel.ours], [v for _, v, _ in panel.ours]
        axis.plot(x, y, "o-", color="C1", label="ours (this run)")
        for s, v, samples in panel.ours:
            axis.annotate(str(samples), (where[s], v), fontsize=7)
    for index, (system, value) in enumerate(panel.references):
        ceiling = system == CEILING
        axis.axhline(
            value,
            color="black" if ceiling else f"C{index + 2}",
            linestyle="-." if ceiling else ":",
            linewidth=1,
            label=REFERENCES[system],
        )
    axis.set_xticks(range(len(scales)), scales)
    axis.set_title(panel.title, fontsize=9)
    axis.legend(fontsize=6)


def _plot_title(tables: dict[str, list[dict]]) -> str:
    ours = [r for t in TABLES for r in ours_rows(tables[t])]
    if not ours:
        return PLOT_TITLE_NOTHING
    first = ours[0]
    return PLOT_TITLE.format(profile=first["profile"], models=first["models"])


def _empty_plot(out: Path) -> None:
    figure, axis = plt.subplots(figsize=(5, 2))
    axis.axis("off")
    axis.text(0.5, 0.5, PLOT_EMPTY, ha="center")
    figure.savefig(out / "scaling.png", dpi=100)
    plt.close(figure)
