"""The paper's Tables 2-4 beside ours, the world's known answers and checks, and a scaling plot.

Table 2 (Emu Edit): CLIP_dir, CLIP_out, L1, CLIP_img, DINO. Table 3 (MagicBrush): L1, L2,
CLIP-I, DINO, CLIP-T, single- and multi-turn. Table 4 (loss ablation, Emu Edit). Measured rows:
ours per scale, InstructPix2Pix and the copy of the input (a trivial baseline), all in the same
harness, each labelled with its profile, training samples and where its models' weights come
from; ours adds its mean region fraction, share of empty regions and, on MagicBrush, region IoU.
Published rows come from `published.yaml`. A metric scored by a random model says so.

Known answers (DESIGN §10): where a test set knows each edit's region and target, every system's
region overlap and edit success beside the trivial baselines and the ceiling, so that no number
can look good alone. World models: each world model checked alone, and the loss landscape
(metrics/world.json).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

from components.evaluation.labels import RANDOM  # noqa: E402

PUBLISHED = Path(__file__).with_name("published.yaml")
EMU_EDIT_COLUMNS = ("clip_dir", "clip_out", "l1", "clip_img", "dino")  # Table 2's order
MAGICBRUSH_COLUMNS = ("l1", "l2", "clip_i", "dino", "clip_t")
REGION_COLUMNS = ("region_fraction", "empty_region")
# Table 4's known answers: what Figure 6 says each loss does to the region (misses beside a
# similar object without L_semAlign, large and sparse without L_CLIP) -> score under `ours/`
ABLATION_KNOWN = {
    "region_iou": "region_iou",
    "region_iou_distractor": "distractor/region_iou",
    "region_fraction": "region_fraction",
    "region_precision": "region_precision",
    "edit_success": "edit_success",
}
LOSS_TERMS = {  # MethodConfig's loss weight -> the loss it weighs (Eqs. 6-11)
    "alpha": "L_semAlign",
    "beta": "L_CLIP",
    "lambda_g": "L_CLIPg",
    "lambda_d": "L_CLIPd",
    "lambda_s": "L_CLIPs",
}
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
    "emu_edit_ablation": (*EMU_EDIT_COLUMNS, *ABLATION_KNOWN),
}
LABEL_COLUMNS = ("method", "source", "profile", "scale", "training_samples", "models", "cases")
LOWER_IS_BETTER = {"l1", "l2"}
HEADERS = {  # region_fraction and empty_region describe a region, they do not score it: no arrow
    "region_fraction": "region fraction",
    "empty_region": "empty-region share",
    "region_iou": "region IoU ↑",
    "region_iou_grid": "region IoU, grid ↑",
    "region_precision": "precision ↑",
    "region_recall": "recall ↑",
    "edit_success": "edit success ↑",
    "edit_success_distractor": "edit success, distractor ↑",
    "region_iou_distractor": "region IoU, distractor ↑",
    "edit_success_no_distractor": "edit success, no distractor ↑",
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
        "Measured rows: the method trained at one scale (`ablations.scale`) with the named loss "
        "weights at 0 (`regionedit train --ablation NAME`, dvc.yaml: ablate), beside the full "
        "method at that scale; region IoU, distractor: the cases with a similar object beside "
        "the edited one (Figure 6's hard case). The paper's Table 4 has no row without L_CLIP "
        "(Figure 6 shows it).",
    ],
}
NOTES["magicbrush_multi"] = NOTES["magicbrush_single"]
METRIC_MODELS = {  # paper metric -> the model that scores it
    **dict.fromkeys(("clip_dir", "clip_out", "clip_img", "clip_i", "clip_t"), "CLIP"),
    "dino": "DINO",
}
RANDOM_MARK = "‡"

# Known answers (DESIGN §10): ours, the ceiling, InstructPix2Pix, then the trivial baselines
TRIVIAL = ("untrained", "whole_image", "random_area", "copy")
CEILING = "ground_truth"  # our editor handed the ground-truth region: the generator's best
KNOWN_SYSTEMS = ("ours", CEILING, "baseline", *TRIVIAL)
KNOWN_COLUMNS = {  # column -> its score under `<system>/<test set's prefix>`
    "region_iou": "region_iou",
    "region_iou_grid": "region_iou_grid",
    "region_precision": "region_precision",
    "region_recall": "region_recall",
    "region_fraction": "region_fraction",
    "edit_success": "edit_success",
    "edit_success_distractor": "distractor/edit_success",
    "edit_success_no_distractor": "no distractor/edit_success",
}
KNOWN_TITLES = {
    "emu_edit": "Emu Edit test set",
    "magicbrush_single": "MagicBrush test set, single-turn",
    "magicbrush_multi": "MagicBrush test set, multi-turn (final turn)",
}
SYSTEM_LABELS = {  # the systems without a head or models of their own to name
    "untrained": "untrained head (trivial baseline: the seeded head, no training)",
    "whole_image": "whole image (trivial baseline)",
    "random_area": "random region of the ground truth's area (trivial baseline)",
    "ground_truth": "ground-truth region (the generator's ceiling)",
    "copy": "copy of the input (trivial baseline), same harness",
}
REFERENCES = {  # the reference lines of the known-answer plots, and the scaling table's names
    "untrained": "untrained head",
    "whole_image": "whole image",
    "random_area": "random area",
    "copy": "copy",
    "ground_truth": "ground truth (ceiling)",
}
SCALING_METRICS = ("region_iou", "edit_success")
PLOTTED = "magicbrush_single"  # the test set of the known-answer panels of scaling.png
KNOWN_INTRO = (
    "The world's test sets know each edit's ground-truth region and rendered target (DESIGN "
    "§10). Region IoU, precision and recall compare the region a system repainted with the "
    "ground truth, in pixels and (grid) on the head's patch grid; edit success asks the world's "
    "renderer, not a model, whether the edit painted the target inside the ground-truth region "
    "and kept the rest; distractor: a similar object stands beside the edited one. The ceiling "
    "is our editor handed the ground-truth region; the trivial baselines are the untrained "
    "head, the whole image, a random region of the ground truth's area and the copy of the "
    "input. Ours means something only where it beats every trivial baseline."
)

# World models (metrics/world.json)
SWAPPED_CAPTIONS = 3  # swapped captions per scene in the CLIP check
CHECKS = {  # key -> (model role, what it measures, baseline: (words, value or key of its value))
    "clip/swapped_caption_accuracy": (
        "clip",
        "how often the method's CLIP ranks a held-out scene's true caption above "
        f"{SWAPPED_CAPTIONS} captions with one attribute swapped",
        ("chance", 1 / (1 + SWAPPED_CAPTIONS)),
    ),
    "metric_clip/swapped_caption_accuracy": (
        "metric_clip",
        "the same for the metric CLIP (another seed and shape), which scores the paper's metrics",
        ("chance", 1 / (1 + SWAPPED_CAPTIONS)),
    ),
    "inpainting/edit_success_ground_truth": (
        "inpainting",
        "edit success of the generator alone, repainting the ground-truth region under t_e: the "
        "ceiling of any region the head can choose",
        ("a random region of the same area", "inpainting/edit_success_random_area"),
    ),
    "inpainting/edit_success_random_area": (
        "inpainting",
        "edit success of the same generator repainting a random region of that area",
        ("the ground-truth region", "inpainting/edit_success_ground_truth"),
    ),
    "vae/within_tolerance": (
        "inpainting",
        "share of pixels within the edit tolerance after the VAE's encode-decode round trip",
        ("a lossless round trip", 1.0),
    ),
    "vae/edit_success_ceiling": (
        "inpainting",
        "edit success of the rendered target's VAE round trip pasted into the ground-truth "
        "region: the most any UNet behind this VAE can reach",
        ("a lossless round trip", 1.0),
    ),
}
LANDSCAPE_REGIONS = {
    "ground_truth": "ground truth",
    "empty": "empty",
    "whole_image": "whole image",
    "random_area": "random area (as many cells)",
}
LANDSCAPE_TERMS = ("clip_global", "clip_direction", "clip_structure", "clip")


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


def _measured(system: str, prefix: str, columns: tuple, scale: str, record: dict) -> dict:
    scores = record["scores"]
    return {
        "method": row_label(system, record),
        "source": "this run",
        "profile": record["profile"],
        "scale": scale if system == "ours" else None,
        "training_samples": record["training_samples"] if system == "ours" else None,
        "models": record["models"]["ours" if system == "copy" else system],
        "cases": _cases(prefix, record),
        "random": random_metrics(record),
        **{c: scores.get(f"{system}/{prefix}{c}") for c in columns},
    }


def _cases(prefix: str, record: dict) -> int | None:
    """Emu Edit's cases or MagicBrush's turns; multi-turn scores one final turn per session."""
    return record.get("sessions") if prefix == "multi/" else record.get("cases")


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
            "cases": _cases(prefix, record),
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
    if any(kind.startswith("world models") for kind in kinds):
        return (
            f"The measured rows ({profiles} profile) use models trained here on the generated "
            f"world (DESIGN §10), on {counted} test cases each: the known answers show how well "
            "each system finds and makes the edit, beside the trivial baselines and the ceiling; "
            "rows of random models show only that the code runs, and no measured row compares "
            "with the paper's published rows."
        )
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
        "Rows marked `published` are copied from the paper as printed; all others were measured "
        "by `dvc repro` with the models named in params.yaml. The copy of the input changes "
        "nothing: it bounds what L1, CLIP_img/CLIP-I and DINO can reward, since ours keeps "
        "every pixel outside its region.",
        "",
        *(f"- {note}" for note in notes),
        "",
        *_known_answer_lines(known, out),
        *sections,
        *_world_lines(world or {}),
    ]
    for table, rows in tables.items():
        lines += _paper_table_lines(table, rows, out)
    (out / "tables.md").write_text("\n".join(lines), encoding="utf-8")
    _scaling(tables, known, out)


def _paper_table_lines(table: str, rows: list[dict], out: Path) -> list[str]:
    """One of the paper's tables in markdown, with its CSV written beside it."""
    columns = COLUMNS[table]
    with (out / f"{table}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [*LABEL_COLUMNS, *columns, "note"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    randoms = [c for c in columns if any(c in row.get("random", ()) for row in rows)]
    headers = [column_header(c) + (f" {RANDOM_MARK}" if c in randoms else "") for c in columns]
    body = [
        [
            row["method"] + (" †" if row.get("note") else ""),
            row["source"],
            row["scale"] or "",
            _count(row),
            *(cell(row[c], printed=row["source"] == "published") for c in columns),
        ]
        for row in rows
    ]
    lines = [
        f"## {TITLES[table]}",
        "",
        *markdown_table(["method", "source", "scale", "cases", *headers], body, labels=3),
        "",
        *(f"† {row['method']}: {row['note']}" for row in rows if row.get("note")),
        *NOTES.get(table, []),
    ]
    if randoms:
        lines.append(_random_note(randoms))
    if table == "emu_edit_ablation" and all(row["source"] == "published" for row in rows):
        lines.append("No ablation was run here (dvc.yaml: ablate): only the published rows.")
    if not any(row["source"] == "published" for row in rows) and table in TABLES:
        lines.append(f"(No published numbers in {PUBLISHED.name} for this table.)")
    return [*lines, ""]


def _random_note(metrics: list[str]) -> str:
    models = " and ".join(sorted({METRIC_MODELS[m] for m in metrics}))
    return (
        f"{RANDOM_MARK} {', '.join(metrics)}: random here: not meaningful. The {models} that "
        "scores these measured rows has random weights, so their numbers show only that the "
        "code runs."
    )


def _known_answer_lines(known: KnownAnswers, out: Path) -> list[str]:
    """Every system on each test set at its largest scale, then ours per scale against the best
    trivial baseline and the ceiling; both also as CSV."""
    if not known.tables:
        return []
    write_csv(out / "known_answers.csv", [r for rows in known.tables.values() for r in rows])
    write_csv(out / "known_answers_scaling.csv", known.scaling)
    lines = ["## Known answers: every system against the world's ground truth", "", KNOWN_INTRO, ""]
    for test_set, rows in known.tables.items():
        first = rows[0]
        body = [[row["method"], *(cell(row[c]) for c in KNOWN_COLUMNS)] for row in rows]
        lines += [
            f"### {KNOWN_TITLES[test_set]}: scale {first['scale']} "
            f"({first['training_samples']:,} training samples, {_count(first)} cases)",
            "",
            *markdown_table(["system", *(HEADERS[c] for c in KNOWN_COLUMNS)], body),
            "",
        ]
        if all(row["region_iou"] is None for row in rows):
            lines += ["This test set knows no ground-truth regions: only region fraction.", ""]
    headers = [h for m in SCALING_METRICS for h in _scaling_headers(m)]
    body = [
        [
            KNOWN_TITLES[row["test_set"]],
            row["scale"],
            f"{row['training_samples']:,}",
            *(value for m in SCALING_METRICS for value in _scaling_cells(row, m)),
        ]
        for row in known.scaling
    ]
    return [
        *lines,
        "### Scaling: ours against the best trivial baseline and the ceiling",
        "",
        *markdown_table(["test set", "scale", "training samples", *headers], body, labels=2),
        "",
    ]


def _scaling_headers(metric: str) -> list[str]:
    return [f"{who} {HEADERS[metric]}" for who in ("ours", "best trivial", "ceiling")]


def _scaling_cells(row: dict, metric: str) -> list[str]:
    trivial = row[f"best_trivial_{metric}_system"]
    named = f" ({REFERENCES[trivial]})" if trivial else ""
    best = cell(row[f"best_trivial_{metric}"]) + named
    return [cell(row[f"ours_{metric}"]), best, cell(row[f"ceiling_{metric}"])]


def _world_lines(world: dict) -> list[str]:
    """The world's models checked alone, then the loss landscape, from metrics/world.json."""
    if not world:
        return []
    kinds = world.get("models", {})
    body = [
        [
            key,
            f"{role} ({kinds.get(role, 'unknown')})",
            what,
            f"{words}: {cell(world.get(value) if isinstance(value, str) else value)}",
            cell(world[key]),
        ]
        for key, (role, what, (words, value)) in CHECKS.items()
        if key in world
    ]
    return [
        f"## World models ({world.get('profile', 'unknown')} profile, metrics/world.json)",
        "",
        "Each world model checked alone, on held-out scenes, before the method sees it.",
        "",
        *markdown_table(
            ["check", "model", "what it measures", "chance or baseline", "value"], body, 4
        ),
        "",
        *_landscape_lines(world),
    ]


def _landscape_lines(world: dict) -> list[str]:
    """L_CLIP and its terms per region, how often and by how much the ground truth beats each
    region, and plainly whether it scores the lowest L_CLIP."""
    if f"landscape/ground_truth/{LANDSCAPE_TERMS[-1]}" not in world:
        return []
    body = []
    for region, name in LANDSCAPE_REGIONS.items():
        beats = world.get(f"landscape/ground_truth_beats/{region}")
        margin = world.get(f"landscape/margin/{region}")
        terms = [cell(world.get(f"landscape/{region}/{term}")) for term in LANDSCAPE_TERMS]
        body.append([name, *terms, cell(beats), cell(margin)])
    headers = [*(f"{term} ↓" for term in LANDSCAPE_TERMS[:-1]), "L_CLIP ↓"]
    beaten = ["ground truth lower (share of edits)", "mean margin (region − ground truth)"]
    return [
        f"### Loss landscape: L_CLIP by region ({int(world.get('landscape/edits', 0))} held-out "
        "edits, generator in the loop)",
        "",
        "The method's L_CLIP terms for the same edits under each region, with its frozen models "
        "(reports/landscape.csv per edit). L_semAlign does not depend on the region, so L_CLIP "
        "ranks the regions as L_total does: training can find the ground truth only if it "
        "scores lowest.",
        "",
        *markdown_table(["region", *headers, *beaten], body),
        "",
        landscape_verdict(world),
        "",
    ]


def landscape_verdict(world: dict) -> str:
    """Plainly: does the ground-truth region score the lowest mean L_CLIP (DESIGN §10)?"""
    losses = {
        region: world[f"landscape/{region}/clip"]
        for region in LANDSCAPE_REGIONS
        if f"landscape/{region}/clip" in world
    }
    lowest = min(losses, key=losses.__getitem__)
    if lowest == "ground_truth":
        return "The ground-truth region scores the lowest mean L_CLIP of the regions, as it must."
    return (
        f"The ground truth does not score the lowest L_CLIP: the {LANDSCAPE_REGIONS[lowest]} "
        f"region scores {losses[lowest]:.4f} against the ground truth's "
        f"{losses['ground_truth']:.4f}. No optimiser can find the ground-truth region on this "
        "landscape: the world's models are at fault, not the training (DESIGN §10)."
    )


@dataclass
class Panel:
    """One plot of scaling.png: ours per scale, the paper's, and horizontal reference lines."""

    title: str
    ours: list[tuple[str, float, int]]  # (scale, value, training samples)
    paper: list[tuple[str, float]] = field(default_factory=list)  # (scale, value)
    references: list[tuple[str, float]] = field(default_factory=list)  # (system, value)


def _scaling(tables: dict[str, list[dict]], known: KnownAnswers, out: Path) -> None:
    """The world's known answers and each paper metric against the data scale: ours beside the
    paper's Ours (1M…5M) or the trivial baselines and the ceiling; a panel without data is
    left out."""
    _scaling_csv(tables, known, out)
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


def _scaling_csv(tables: dict[str, list[dict]], known: KnownAnswers, out: Path) -> None:
    """Ours' paper metrics and known-answer metrics per scale, long (DVC plots: x samples)."""
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
        for row in known.scaling:
            for metric in SCALING_METRICS:
                if (value := row[f"ours_{metric}"]) is not None:
                    writer.writerow(
                        [row["training_samples"], row["scale"], row["test_set"], metric, value]
                    )


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
        measured = _ours(tables[table])
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
            title = f"{table}: {column}" + ("\n(random model: not meaningful)" if random else "")
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


def scale_key(scale: str) -> tuple[float, str]:
    number = scale.rstrip("MKk")
    return (float(number), scale) if number.replace(".", "", 1).isdigit() else (float("inf"), scale)


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(headers: list[str], body: list[list[str]], labels: int = 1) -> list[str]:
    """A markdown table: the first `labels` columns are names (left), the rest numbers (right)."""
    rule = "|" + "---|" * labels + "---:|" * (len(headers) - labels)
    return ["| " + " | ".join(headers) + " |", rule, *("| " + " | ".join(b) + " |" for b in body)]


def column_header(column: str) -> str:
    if column in HEADERS:
        return HEADERS[column]
    return f"{column} {'↓' if column in LOWER_IS_BETTER else '↑'}"


def _count(row: dict) -> str:
    return "" if row["cases"] is None else str(row["cases"])


def cell(value: float | None, printed: bool = False) -> str:
    """A measured value to 4 decimals; a published one exactly as the paper prints it."""
    if value is None:
        return "–"
    return str(value) if printed else f"{value:.4f}"
