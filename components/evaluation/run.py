"""Run a benchmark for ours and the baseline: edit (cached per case), score, tabulate, picture.

Emu Edit scores every edit against its input. MagicBrush scores against the ground truth:
single-turn edits each turn's ground-truth input; multi-turn edits the system's own previous
output (turn 1 is the single-turn edit of the same input) and scores the final turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from PIL import Image
from tqdm import tqdm

from components.evaluation.benchmarks import EmuEditCase, MagicBrushSession
from components.evaluation.metrics import EmuEditMetrics, MagicBrushMetrics, MetricModels
from components.evaluation.systems import CachedSystem, EditRecord
from components.pictures import overlay_region

SYSTEMS = ("ours", "baseline")


@dataclass
class BenchmarkResult:
    scores: dict[str, float]  # "<system>/<metric>", "<system>/<task or turn setting>/<metric>"
    rows: list[dict] = field(default_factory=list)  # one per system and scored edit
    pictures: list[list[Image.Image]] = field(default_factory=list)  # input|region|ours|baseline


def evaluate_emu_edit(
    cases: Sequence[EmuEditCase],
    systems: dict[str, CachedSystem],
    models: MetricModels,
    grid_rows: int,
    progress: bool = True,
) -> BenchmarkResult:
    tasks = sorted({case.task for case in cases})
    metrics = {name: EmuEditMetrics(models, tasks) for name in SYSTEMS}
    result = BenchmarkResult({})
    for case in tqdm(cases, desc="emu_edit", unit="case", disable=not progress):
        image = case.image
        edits = {
            name: systems[name](image, case.instruction, case.id, case.input_caption)
            for name in SYSTEMS
        }
        for name, (edited, _, record) in edits.items():
            metrics[name].update(
                [edited], [image], [case.input_caption], [case.output_caption], [case.task]
            )
            result.rows.append(
                {"system": name, "task": case.task, **_row(record), **metrics[name].batch_values[0]}
            )
        _picture(result, grid_rows, image, edits)
    result.scores = _scores(metrics)
    return result


def evaluate_magicbrush(
    sessions: Sequence[MagicBrushSession],
    systems: dict[str, CachedSystem],
    models: MetricModels,
    grid_rows: int,
    progress: bool = True,
) -> BenchmarkResult:
    metrics = {
        f"{name}/{setting}": MagicBrushMetrics(models)
        for name in SYSTEMS
        for setting in ("single", "multi")
    }
    result = BenchmarkResult({})
    for session in tqdm(sessions, desc="magicbrush", unit="session", disable=not progress):
        chain = {}  # each system's own latest output: the input of its next multi-turn edit
        for index, turn in enumerate(session.turns):
            image, target = turn.input_image, turn.target_image
            case_id = f"{session.id}-turn{turn.turn}"
            edits = {name: systems[name](image, turn.instruction, case_id) for name in SYSTEMS}
            for name, (edited, _, record) in edits.items():
                score = metrics[f"{name}/single"]
                score.update([edited], [target])
                result.rows.append(
                    {
                        "system": name,
                        "setting": "single",
                        "session": session.id,
                        "turn": turn.turn,
                        **_row(record),
                        **score.batch_values[0],
                    }
                )
                chain[name] = (
                    edits[name]
                    if index == 0
                    else systems[name](chain[name][0], turn.instruction, f"{case_id}-multi")
                )
            _picture(result, grid_rows, image, edits)
        last = session.turns[-1]
        for name, (edited, _, record) in chain.items():
            score = metrics[f"{name}/multi"]
            score.update([edited], [last.target_image])
            result.rows.append(
                {
                    "system": name,
                    "setting": "multi",
                    "session": session.id,
                    "turn": last.turn,
                    **_row(record),
                    **score.batch_values[0],
                }
            )
    result.scores = _scores(metrics)
    return result


def _row(record: EditRecord) -> dict:
    row = asdict(record)
    row["case"] = row.pop("id")
    return row


def _picture(result: BenchmarkResult, rows: int, image: Image.Image, edits: dict) -> None:
    if len(result.pictures) < rows:
        ours, region, _ = edits["ours"]
        result.pictures.append([image, overlay_region(image, region), ours, edits["baseline"][0]])


def _scores(metrics: dict[str, EmuEditMetrics | MagicBrushMetrics]) -> dict[str, float]:
    return {
        f"{prefix}/{name}": float(value)
        for prefix, metric in metrics.items()
        for name, value in metric.compute().items()
    }
