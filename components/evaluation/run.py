"""Run a benchmark for every system: edit (cached per case), score, tabulate, picture.

The systems are ours, the InstructPix2Pix baseline and the copy of the input (the trivial
system), all scored by the same metrics. Emu Edit scores every edit against its input.
MagicBrush scores against the ground truth: single-turn edits each turn's ground-truth input;
multi-turn edits the system's own previous output (turn 1 is the single-turn edit of the same
input) and scores the final turn. Ours also gets its region scored (`RegionMetrics`): the share
of the image it repainted, the share of empty regions, and on MagicBrush the IoU with the
annotators' mask.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from PIL import Image
from tqdm import tqdm

from components.evaluation.benchmarks import EmuEditCase, MagicBrushSession, MagicBrushTurn
from components.evaluation.metrics import (
    EmuEditMetrics,
    MagicBrushMetrics,
    MetricModels,
    RegionMetrics,
)
from components.evaluation.systems import EditRecord
from components.pictures import overlay_region

System = Callable[..., tuple[Image.Image, Image.Image | None, EditRecord]]
REGION_SYSTEM = "ours"  # the one system that predicts a region


@dataclass
class BenchmarkResult:
    scores: dict[str, float]  # "<system>/<metric>", "<system>/<task or turn setting>/<metric>"
    rows: list[dict] = field(default_factory=list)  # one per system and scored edit
    pictures: list[list[Image.Image]] = field(default_factory=list)  # input|region|ours|baseline


def evaluate_emu_edit(
    cases: Sequence[EmuEditCase],
    systems: dict[str, System],
    models: MetricModels,
    grid_rows: int,
    progress: bool = True,
) -> BenchmarkResult:
    """`systems[name](image, instruction, case_id, t_o)`: ours, baseline, copy, …"""
    tasks = sorted({case.task for case in cases})
    metrics = {name: EmuEditMetrics(models, tasks) for name in systems}
    regions = RegionMetrics(tasks)
    result = BenchmarkResult({})
    for case in tqdm(cases, desc="emu_edit", unit="case", disable=not progress):
        image = case.image
        edits = {
            name: system(image, case.instruction, case.id, case.input_caption)
            for name, system in systems.items()
        }
        for name, (edited, region, record) in edits.items():
            metrics[name].update(
                [edited], [image], [case.input_caption], [case.output_caption], [case.task]
            )
            values = metrics[name].batch_values[0]
            if name == REGION_SYSTEM:
                regions.update([region], [record.region_fraction], None, [case.task])
                values = values | _measured(regions.batch_values[0])
            result.rows.append({"system": name, "task": case.task, **_row(record), **values})
        _picture(result, grid_rows, image, edits)
    region_scores = {REGION_SYSTEM: regions} if REGION_SYSTEM in systems else {}
    result.scores = _scores(metrics) | _scores(region_scores)
    return result


def evaluate_magicbrush(
    sessions: Sequence[MagicBrushSession],
    systems: dict[str, System],
    models: MetricModels,
    grid_rows: int,
    progress: bool = True,
) -> BenchmarkResult:
    """`systems[name](image, instruction, case_id)`: ours, baseline, copy, …"""
    settings = ("single", "multi")
    metrics = {f"{name}/{s}": MagicBrushMetrics(models) for name in systems for s in settings}
    regions = {setting: RegionMetrics() for setting in settings}
    result = BenchmarkResult({})

    def score(name: str, setting: str, turn: MagicBrushTurn, edit: tuple) -> None:
        edited, region, record = edit
        metric = metrics[f"{name}/{setting}"]
        metric.update([edited], [turn.target_image], [turn.caption])
        values = metric.batch_values[0]
        if name == REGION_SYSTEM:
            regions[setting].update([region], [record.region_fraction], [turn.mask_image])
            values = values | regions[setting].batch_values[0]
        result.rows.append(
            {
                "system": name,
                "setting": setting,
                "session": session.id,
                "turn": turn.turn,
                **_row(record),
                **values,
            }
        )

    for session in tqdm(sessions, desc="magicbrush", unit="session", disable=not progress):
        chain = {}  # each system's own latest output: the input of its next multi-turn edit
        for index, turn in enumerate(session.turns):
            image = turn.input_image
            case_id = f"{session.id}-turn{turn.turn}"
            edits = {
                name: system(image, turn.instruction, case_id) for name, system in systems.items()
            }
            for name, edit in edits.items():
                score(name, "single", turn, edit)
                chain[name] = (
                    edit
                    if index == 0
                    else systems[name](chain[name][0], turn.instruction, f"{case_id}-multi")
                )
            _picture(result, grid_rows, image, edits)
        for name, edit in chain.items():
            score(name, "multi", session.turns[-1], edit)
    region_scores = {
        f"{REGION_SYSTEM}/{s}": regions[s] for s in settings if REGION_SYSTEM in systems
    }
    result.scores = _scores(metrics) | _scores(region_scores)
    return result


def _row(record: EditRecord) -> dict:
    row = asdict(record)
    row["case"] = row.pop("id")
    return row


def _picture(result: BenchmarkResult, rows: int, image: Image.Image, edits: dict) -> None:
    """input | our region | ours | baseline, for the first `rows` inputs."""
    if len(result.pictures) < rows and {"ours", "baseline"} <= edits.keys():
        ours, region, _ = edits["ours"]
        result.pictures.append([image, overlay_region(image, region), ours, edits["baseline"][0]])


def _measured(values: dict[str, float]) -> dict[str, float]:
    """The values that were measured: Emu Edit has no mask, so no region IoU (not a NaN)."""
    return {name: value for name, value in values.items() if not math.isnan(value)}


def _scores(metrics: dict[str, EmuEditMetrics | MagicBrushMetrics | RegionMetrics]) -> dict:
    return {
        f"{prefix}/{name}": float(value)
        for prefix, metric in metrics.items()
        for name, value in metric.compute().items()
    }
