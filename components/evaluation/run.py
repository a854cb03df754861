"""Run a benchmark for every system: edit (cached per case), score, tabulate, picture.

The systems (components/evaluation/systems.py) are all scored by the same metrics. Emu Edit
scores every edit against its input. MagicBrush scores against the ground truth: single-turn
edits each turn's ground-truth input; multi-turn edits the system's own previous output (turn 1
is the single-turn edit of the same input) and scores the final turn, its known answer being the
final turn's ground-truth input, region and output, so earlier turns' mistakes count. Every
system also gets its region scored (`RegionMetrics`): the share of the image it repainted, the
share of empty regions, and where the case knows the answer (MagicBrush, and the world's Emu
Edit-format sets) the overlap with the ground-truth region and edit_success. The systems that
are handed the ground-truth region skip the cases without one, and the log says so.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

from PIL import Image
from tqdm import tqdm

from components.evaluation.benchmarks import EmuEditCase, MagicBrushSession, MagicBrushTurn
from components.evaluation.metrics import (
    EmuEditMetrics,
    KnownAnswer,
    MagicBrushMetrics,
    MetricModels,
    RegionMetrics,
)
from components.evaluation.systems import (
    GROUND_TRUTH_SYSTEMS,
    Edit,
    EditRecord,
    EditRequest,
    System,
)
from components.pictures import outline_region, overlay_region

log = logging.getLogger(__name__)


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
    grid: int | None = None,
    progress: bool = True,
) -> BenchmarkResult:
    """`systems[name](request)`: ours, baseline, copy, …; `grid`: cells a side of the head's
    patch grid, for the region metrics on it."""
    tasks = sorted({case.task for case in cases})
    metrics = {name: EmuEditMetrics(models, tasks) for name in systems}
    regions = {name: RegionMetrics(tasks, grid) for name in systems}
    skipped: Counter[str] = Counter()
    result = BenchmarkResult({})
    for case in tqdm(cases, desc="emu_edit", unit="case", disable=not progress):
        image = case.image
        answer = _emu_edit_answer(case, image)
        truth = None if answer is None else answer.mask
        request = EditRequest(case.id, image, case.instruction, case.input_caption, truth)
        edits = _edit(systems, request, skipped)
        for name, (edited, region, record) in edits.items():
            metrics[name].update(
                [edited], [image], [case.input_caption], [case.output_caption], [case.task]
            )
            regions[name].update([edited], [region], [answer], [case.task], [case.distractor])
            values = metrics[name].batch_values[0] | regions[name].batch_values[0]
            result.rows.append(
                {"system": name, "task": case.task, **_row(record), **_measured(values)}
            )
        _picture(result, grid_rows, image, edits, answer)
    _note_skipped("emu_edit", skipped, len(cases))
    result.scores = _scores(metrics) | _scores(regions)
    return result


def evaluate_magicbrush(
    sessions: Sequence[MagicBrushSession],
    systems: dict[str, System],
    models: MetricModels,
    grid_rows: int,
    grid: int | None = None,
    progress: bool = True,
    input_captions: bool = False,
) -> BenchmarkResult:
    """`systems[name](request)`: ours, baseline, copy, …; `grid` as for Emu Edit. The region
    metrics are also given per edit kind where the set names one (the world's sets).
    `input_captions`: give the systems the set's description of each turn's input as t_o (in
    multi-turn too, where the input is the system's own output), instead of their captioner's."""
    settings = ("single", "multi")
    kinds = sorted({t.kind for s in sessions for t in s.turns if t.kind is not None})
    keys = [f"{name}/{setting}" for name in systems for setting in settings]
    metrics = {key: MagicBrushMetrics(models) for key in keys}
    regions = {key: RegionMetrics(kinds, grid) for key in keys}
    skipped: Counter[str] = Counter()
    result = BenchmarkResult({})

    def score(key: str, turn: MagicBrushTurn, answer: KnownAnswer, edit: Edit) -> None:
        edited, region, record = edit
        metrics[key].update([edited], [answer.target], [turn.caption])
        regions[key].update([edited], [region], [answer], [turn.kind], [turn.distractor])
        values = metrics[key].batch_values[0] | regions[key].batch_values[0]
        name, setting = key.split("/")
        result.rows.append(
            {
                "system": name,
                "setting": setting,
                "session": session.id,
                "turn": turn.turn,
                **_row(record),
                **_measured(values),
            }
        )

    for session in tqdm(sessions, desc="magicbrush", unit="session", disable=not progress):
        chain = {}  # each system's own latest output: the input of its next multi-turn edit
        for index, turn in enumerate(session.turns):
            image = turn.input_image
            answer = KnownAnswer(image, turn.mask_image, turn.target_image)
            case_id = f"{session.id}-turn{turn.turn}"
            t_o = turn.input_caption if input_captions else None
            request = EditRequest(case_id, image, turn.instruction, t_o, answer.mask)
            edits = _edit(systems, request, skipped)
            for name, edit in edits.items():
                score(f"{name}/single", turn, answer, edit)
                chain[name] = (
                    edit
                    if index == 0
                    else systems[name](
                        replace(request, id=f"{case_id}-multi", image=chain[name][0])
                    )
                )
            _picture(result, grid_rows, image, edits, answer)
        for name, edit in chain.items():  # `answer` is the final turn's
            score(f"{name}/multi", session.turns[-1], answer, edit)
    _note_skipped("magicbrush", skipped, sum(len(session.turns) for session in sessions))
    result.scores = _scores(metrics) | _scores(regions)
    return result


def _emu_edit_answer(case: EmuEditCase, image: Image.Image) -> KnownAnswer | None:
    """The world's Emu Edit-format sets carry a ground-truth region and target; the published
    set does not."""
    if case.mask is None or case.target is None:
        return None
    return KnownAnswer(image, case.mask.open("L"), case.target.open("RGB"))


def _edit(systems: dict[str, System], request: EditRequest, skipped: Counter[str]) -> dict:
    """Every system's edit of `request`, but for those that need a ground-truth region where it
    has none: they are counted in `skipped`."""
    edits = {}
    for name, system in systems.items():
        if name in GROUND_TRUTH_SYSTEMS and request.truth is None:
            skipped[name] += 1
        else:
            edits[name] = system(request)
    return edits


def _note_skipped(benchmark: str, skipped: Counter[str], cases: int) -> None:
    for name, count in sorted(skipped.items()):
        log.info(
            "%s: %s needs a ground-truth region, which %d of %d cases lack: not run there",
            benchmark,
            name,
            count,
            cases,
        )


def _row(record: EditRecord) -> dict:
    row = asdict(record)
    row["case"] = row.pop("id")
    return row


def _picture(
    result: BenchmarkResult,
    rows: int,
    image: Image.Image,
    edits: dict,
    answer: KnownAnswer | None,
) -> None:
    """input | the first system's region (ours where it runs; with the ground truth's outline
    where known) | its edit | baseline | target, for the first `rows` inputs; the baseline and
    the target where there are."""
    if len(result.pictures) >= rows:
        return
    ours, region, _ = next(iter(edits.values()))
    shown = overlay_region(image, region)
    if answer is not None:
        shown = outline_region(shown, answer.mask)
    row = [image, shown, ours]
    if "baseline" in edits:
        row.append(edits["baseline"][0])
    if answer is not None:
        row.append(answer.target)
    result.pictures.append(row)


def _measured(values: dict[str, float]) -> dict[str, float]:
    """The values that were measured: a case without a known answer has no region IoU, an
    uncaptioned turn no CLIP-T (left out, not a NaN)."""
    return {name: value for name, value in values.items() if not math.isnan(value)}


def _scores(metrics: dict[str, EmuEditMetrics | MagicBrushMetrics | RegionMetrics]) -> dict:
    """`<prefix>/<metric>` of every metric that saw a case (a skipped system saw none)."""
    return {
        f"{prefix}/{name}": float(value)
        for prefix, metric in metrics.items()
        if metric.update_count
        for name, value in metric.compute().items()
    }
