"""The report: the paper's Tables 2-4 beside labelled measured rows, the world's known answers
and checks, and the scaling plot."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from components.config import load_params
from components.evaluation.report import (
    known_answers,
    landscape_verdict,
    load_published,
    metric_notes,
    report_tables,
    write_report,
)
from components.evaluation.report.prose import LANDSCAPE_REGIONS
from components.evaluation.report.schema import (
    EMU_EDIT_COLUMNS,
    KNOWN_COLUMNS,
    LANDSCAPE_TERMS,
    PUBLISHED,
)
from components.models.provenance import provenance

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT.parent / "shared" / "paper" / "beyond-editing-pairs.txt"


def record(samples: int, benchmark: str, value: float) -> dict:
    """An evaluation record as flows/evaluate.py writes it, for a tiny random default run."""
    systems = ("ours", "baseline", "copy")
    if benchmark == "emu_edit":
        scores = {f"{s}/{c}": value for s in systems for c in EMU_EDIT_COLUMNS}
        scores |= {"copy/l1": 0.0, "ours/add/l1": 0.4, "baseline/add/l1": 0.5}
        scores |= {"ours/region_fraction": 0.3, "ours/empty_region": 0.25}
    else:
        scores = {
            f"{s}/{t}/{c}": value
            for s in systems
            for t in ("single", "multi")
            for c in ("l1", "l2", "clip_i", "dino", "clip_t")
        }
        scores |= {"ours/single/region_iou": 0.42}
    return {
        "profile": "default",
        "training_samples": samples,
        "head_state": "trained",
        "cases": 12,
        "sessions": 6 if benchmark == "magicbrush" else 0,
        "models": {"ours": "random models", "baseline": "random models", "metrics": "random"},
        "weights": {"metric_clip": "random"},
        "metric_models": {
            "clip": "local-dir:zoo/metric-clip",
            "clip_pretrained": None,
            "clip_weights": "random",
            "dino": "d",
        },
        "baseline_settings": {"steps": 4},
        "scores": scores,
    }


@pytest.fixture
def summaries() -> dict:
    return {
        "1M": {
            "emu_edit": record(16, "emu_edit", 0.1),
            "magicbrush": record(16, "magicbrush", 0.5),
        },
        "2M": {"emu_edit": record(32, "emu_edit", 0.15)},
    }


SYSTEMS = {  # system -> (region IoU, edit success) in the synthetic world's records; ours varies
    "ground_truth": (1.0, 0.875),
    "baseline": (0.15, 0.25),
    "untrained": (0.05, 0.0625),
    "whole_image": (0.125, 0.125),
    "random_area": (0.2, 0.1875),
    "copy": (0.0, 0.0),
}


def region_scores(system: str, prefix: str, iou: float, success: float) -> dict[str, float]:
    """RegionMetrics' scores of one system under `prefix`, distractor groups included."""
    values = {
        "region_iou": iou,
        "region_iou_grid": min(1.0, iou + 0.0625),
        "region_precision": iou,
        "region_recall": min(1.0, 2 * iou),
        "region_fraction": 0.0 if system == "copy" else 0.25,
        "empty_region": float(system == "copy"),
        "edit_success": success,
    }
    groups = {
        "distractor/region_iou": max(0.0, iou - 0.0625),
        "distractor/edit_success": max(0.0, success - 0.0625),
        "no distractor/edit_success": success + 0.0625,
    }
    return {f"{system}/{prefix}{name}": v for name, v in (values | groups).items()}


def world_record(samples: int, benchmark: str, ours: tuple[float, float]) -> dict:
    """An evaluation record of the world's default run: every system of flows/evaluate.py's
    SYSTEMS, world models but a random DINO."""
    content = record(samples, benchmark, 0.2)
    content["models"] = {
        "ours": "world models, random instruction encoder",
        "baseline": "random models",
        "metrics": "world models, random dino",
    }
    content["weights"] = {"metric_clip": "world", "dino": "random"}
    content["metric_models"]["clip_weights"] = "world"
    prefixes = ("", "recolour/") if benchmark == "emu_edit" else ("single/", "multi/")
    for system, (iou, success) in (SYSTEMS | {"ours": ours}).items():
        for prefix in prefixes:
            content["scores"] |= region_scores(system, prefix, iou, success)
    return content


def world_checks(ground_truth_clip: float) -> dict:
    """metrics/world.json as the world-checks stage writes it."""
    clip = {
        "ground_truth": ground_truth_clip,
        "empty": 0.5,
        "whole_image": 0.75,
        "random_area": 0.625,
    }
    landscape = {"landscape/edits": 16.0}
    for region, loss in clip.items():
        landscape |= {f"landscape/{region}/{term}": loss / 4 for term in LANDSCAPE_TERMS[:-1]}
        landscape[f"landscape/{region}/clip"] = loss
    for region in list(LANDSCAPE_REGIONS)[1:]:
        landscape[f"landscape/ground_truth_beats/{region}"] = 0.375
        landscape[f"landscape/margin/{region}"] = clip[region] - ground_truth_clip
    return {
        "profile": "default",
        "models": {
            "clip": "world",
            "metric_clip": "world",
            "inpainting": "world",
            "dino": "random",
        },
        "clip/swapped_caption_accuracy": 0.8125,
        "metric_clip/swapped_caption_accuracy": 0.6875,
        "inpainting/edit_success_ground_truth": 0.875,
        "inpainting/edit_success_random_area": 0.125,
        "vae/within_tolerance": 0.96875,
        "vae/edit_success_ceiling": 0.9375,
        **landscape,
    }


@pytest.fixture
def world() -> dict:
    """Two scales of the world's evaluation: ours improves from 1M to 2M."""
    return {
        scale: {b: world_record(samples, b, ours) for b in ("emu_edit", "magicbrush")}
        for scale, samples, ours in (("1M", 16, (0.3125, 0.25)), ("2M", 32, (0.5, 0.4375)))
    }


def table_after(markdown: str, heading: str) -> dict[str, list[str]]:
    """The cells of each row of the first markdown table under `heading`, by the row's name."""
    lines = markdown[markdown.index(heading) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return {row[0]: row[1:] for row in rows}


def test_published_numbers_are_the_papers_as_printed():
    published = load_published()
    paper = PAPER.read_text(encoding="utf-8") if PAPER.is_file() else None
    counts = {"emu_edit": 11, "magicbrush_single": 5, "magicbrush_multi": 5, "emu_edit_ablation": 5}
    assert {t: len(rows) for t, rows in published.items()} == counts
    rf_solver = next(r for r in published["magicbrush_single"] if r["method"] == "RF-Solver")
    assert rf_solver["l2"] == 0.312 and "0.312" in rf_solver["note"]
    for table, rows in published.items():
        columns = ("l1", "l2", "clip_i", "dino") if table.startswith("magicbrush") else None
        for row in rows:
            values = [row[c] for c in columns or EMU_EDIT_COLUMNS]
            if paper is not None:  # each row's numbers appear together, in order, in the paper
                assert " ".join(str(v) for v in values) in paper, (table, row["method"])
    ours = [r["samples"] for r in published["emu_edit"] if r["method"].startswith("Ours")]
    assert ours == [1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000]


def test_report_shows_every_published_row_beside_labelled_measured_rows(summaries, tmp_path):
    tables = report_tables(summaries, load_published())
    methods = [(row["method"], row["source"]) for row in tables["emu_edit"]][:4]
    assert methods == [
        ("ours (default profile, 16 training samples, random models)", "this run"),
        ("ours (default profile, 32 training samples, random models)", "this run"),
        ("InstructPix2Pix, same harness (random models, 4 steps)", "this run"),
        ("copy of the input (trivial baseline), same harness", "this run"),
    ]
    copy = tables["emu_edit"][3]
    assert copy["l1"] == 0.0 and copy["region_fraction"] is None
    assert tables["emu_edit"][0]["empty_region"] == 0.25
    assert tables["magicbrush_single"][0]["region_iou"] == 0.42
    per_task = {row["method"]: row["l1"] for row in tables["emu_edit_tasks"]}
    assert per_task["ours (default profile, 16 training samples, random models) · add"] == 0.4
    write_report(tables, tmp_path, metric_notes(summaries))
    markdown = (tmp_path / "tables.md").read_text()
    for table, rows in yaml.safe_load(PUBLISHED.read_text()).items():
        for row in rows:
            assert f"| {row['method']} (paper)" in markdown, (table, row["method"])
    assert "## Table 4: loss ablation" in markdown and "No ablation was run here" in markdown
    assert "| 0.0787 | 0.312 |" in markdown and "likely 0.0312" in markdown  # as printed
    assert "ours (1M)" not in markdown.lower()  # a tiny random run never passes for the paper's
    assert "randomly initialised models" in markdown and "nothing about how well" in markdown
    assert "neither Emu Edit's paper nor this paper names the CLIP" in markdown
    assert "emu_edit: CLIP local-dir:zoo/metric-clip (random weights)" in markdown
    with (tmp_path / "emu_edit_ablation.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 5
    assert "32,2M,emu_edit,l1,0.15" in (tmp_path / "scaling.csv").read_text()
    assert (tmp_path / "scaling.png").stat().st_size > 0


def test_report_without_measurements_still_shows_the_paper(tmp_path):
    tables = report_tables({}, load_published())
    assert all(row["source"] == "published" for rows in tables.values() for row in rows)
    write_report(tables, tmp_path)
    assert "Nothing was measured" in (tmp_path / "tables.md").read_text()
    assert (tmp_path / "scaling.png").stat().st_size > 0


def test_provenance_tells_the_world_and_the_random_zoo_from_real_checkpoints():
    default = load_params(ROOT / "params.yaml").models
    paper = load_params(ROOT / "infra" / "profiles" / "paper.yaml")
    kinds = provenance(default)
    assert {role for role, kind in kinds.items() if kind == "world"} == {
        "clip",
        "instruction_encoder",
        "inpainting",
        "metric_clip",
    }  # the world's release
    assert kinds["dino"] == "random"  # the tiny zoo's: the report marks its metric
    assert set(provenance(paper.models).values()) == {"checkpoint"}
    assert paper.profile == "paper" and paper.evaluate.baseline_steps == 100
    unnamed = default.model_copy(update={"clip": "ViT-B-32", "clip_pretrained": None})
    assert provenance(unnamed)["clip"] == "random"  # an open_clip architecture, no weights


def test_report_flow_reads_each_scales_evaluation_record(tmp_path, prefect_harness):
    from components.config import Params
    from flows.evaluate import report_flow

    metrics = tmp_path / "metrics"
    for scale, samples in (("1M", 16), ("3M", 48)):
        (metrics / scale).mkdir(parents=True)
        for benchmark in ("emu_edit", "magicbrush"):
            content = record(samples, benchmark, 0.2) | {"scale": scale, "benchmark": benchmark}
            (metrics / scale / f"{benchmark}.json").write_text(json.dumps(content))
    (metrics / "world.json").write_text(json.dumps(world_checks(0.25)))
    markdown = report_flow(Params(), tmp_path / "reports", metrics).read_text()
    assert "ours (default profile, 48 training samples, random models) | this run | 3M" in markdown
    assert "2M |" not in markdown  # a scale without an evaluation is left out
    assert "## World models (default profile" in markdown
    assert "### MagicBrush test set, single-turn: scale 3M" in markdown
    assert (tmp_path / "reports" / "known_answers.csv").is_file()


def test_known_answers_show_every_system_beside_the_ceiling(world, tmp_path):
    known = known_answers(world)
    single = known.tables["magicbrush_single"]
    assert [row["system"] for row in single] == [
        "ours",
        "ground_truth",
        "baseline",
        "untrained",
        "whole_image",
        "random_area",
        "copy",
    ]
    assert {row["scale"] for row in single} == {"2M"}  # the largest scale with data
    tables = report_tables(world, load_published())
    write_report(tables, tmp_path, metric_notes(world), known, world_checks(0.25))
    markdown = (tmp_path / "tables.md").read_text()
    rows = table_after(markdown, "### MagicBrush test set, single-turn: scale 2M (32 training")
    ceiling = dict(
        zip(KNOWN_COLUMNS, rows["ground-truth region (the generator's ceiling)"], strict=True)
    )
    assert ceiling["region_iou"] == "1.0000" and ceiling["edit_success"] == "0.8750"
    assert ceiling["edit_success_distractor"] == "0.8125"
    assert ceiling["edit_success_no_distractor"] == "0.9375"
    ours = "ours (default profile, 32 training samples, world models, random instruction encoder)"
    assert rows[ours][:1] == ["0.5000"] and "whole image (trivial baseline)" in rows
    emu = table_after(markdown, "### Emu Edit test set: scale 2M")
    assert emu["copy of the input (trivial baseline), same harness"][5] == "0.0000"
    scaling = markdown[markdown.index("### Scaling: ours against the best trivial baseline") :]
    assert (  # ours, the best trivial baseline (named) and the ceiling: IoU, then edit success
        "| MagicBrush test set, single-turn | 1M | 16 | 0.3125 | 0.2000 (random area) | 1.0000 "
        "| 0.2500 | 0.1875 (random area) | 0.8750 |"
    ) in scaling
    with (tmp_path / "known_answers.csv").open() as handle:
        written = list(csv.DictReader(handle))
    assert len(written) == 3 * 7  # every system on Emu Edit and MagicBrush single and multi
    truth = next(
        r for r in written if r["test_set"] == "magicbrush_multi" and r["system"] == "ground_truth"
    )
    assert float(truth["edit_success"]) == 0.875
    assert (tmp_path / "known_answers_scaling.csv").read_text().count("magicbrush_single") == 2
    assert "32,2M,magicbrush_single,edit_success,0.4375" in (tmp_path / "scaling.csv").read_text()
    assert (tmp_path / "scaling.png").stat().st_size > 0
    per_task = [row["method"] for row in tables["emu_edit_tasks"]]
    assert per_task and not any("distractor" in method for method in per_task)


def test_a_random_metric_model_is_named_in_every_table_that_prints_it(world, tmp_path):
    tables = report_tables(world, load_published())
    write_report(tables, tmp_path, metric_notes(world), known_answers(world))
    markdown = (tmp_path / "tables.md").read_text()
    for title in ("Table 2: Emu Edit test set", "Table 3: MagicBrush test set, single-turn"):
        section = markdown[markdown.index(f"## {title}") :].split("\n## ")[0]
        assert "dino ↑ ‡" in section and "random here: not meaningful" in section
        assert "clip_dir ↑ ‡" not in section and "clip_i ↑ ‡" not in section  # world CLIP
    ablation = markdown[markdown.index("## Table 4") :]
    assert "random here" not in ablation  # only the paper's rows: its DINO is the paper's


def test_world_models_section_names_each_check_its_chance_and_the_landscape(tmp_path):
    write_report(report_tables({}, load_published()), tmp_path, world=world_checks(0.625))
    markdown = (tmp_path / "tables.md").read_text()
    checks = table_after(markdown, "## World models (default profile")
    assert checks["clip/swapped_caption_accuracy"][2:] == ["chance: 0.2500", "0.8125"]
    assert checks["inpainting/edit_success_ground_truth"][2].endswith("same area: 0.1250")
    landscape = table_after(markdown, "### Loss landscape")
    assert landscape["ground truth"] == ["0.1562", "0.1562", "0.1562", "0.6250", "–", "–"]
    assert landscape["empty"][-2:] == ["0.3750", "-0.1250"]
    assert "The ground truth does not score the lowest L_CLIP: the empty region" in markdown


def test_landscape_verdict_says_when_the_ground_truth_scores_lowest():
    assert "scores the lowest mean L_CLIP" in landscape_verdict(world_checks(0.25))
    assert "does not score the lowest" in landscape_verdict(world_checks(0.5625))


def test_table_4_sets_each_measured_ablation_beside_the_full_method_and_the_paper(
    tmp_path, prefect_harness
):
    from components.config import Params
    from flows.evaluate import report_flow

    metrics = tmp_path / "metrics"
    full = world_record(16, "emu_edit", (0.6, 0.5)) | {"scale": "1M", "benchmark": "emu_edit"}
    ablated = world_record(16, "emu_edit", (0.2, 0.1)) | {
        "scale": "1M",
        "benchmark": "emu_edit",
        "ablation": {"name": "no-semalign", "zeroed": ["alpha"]},
    }
    for path, content in (
        ("1M/emu_edit.json", full),
        ("ablations/no-semalign/emu_edit.json", ablated),
    ):
        (metrics / path).parent.mkdir(parents=True, exist_ok=True)
        (metrics / path).write_text(json.dumps(content))
    params = Params(ablations={"scale": "1M"})
    markdown = report_flow(params, tmp_path / "reports", metrics).read_text()
    table = table_after(markdown, "## Table 4")
    headers = next(
        [c.strip() for c in line.strip("|").split("|")]
        for line in markdown[markdown.index("## Table 4") :].splitlines()
        if line.startswith("|")
    )
    iou = headers.index("region IoU ↑") - 1
    distractor = headers.index("region IoU, distractor ↑") - 1
    rows = {name.split(" (")[0]: cells for name, cells in table.items()}
    assert rows["ours, w/o L_semAlign"][iou] == "0.2000"
    assert rows["ours, all losses"][iou] == "0.6000"
    assert rows["ours, all losses"][distractor] == "0.5375"  # region_scores: IoU - 0.0625
    assert rows["w/o L_semAlign"][iou] == "–"  # the paper reports no region IoU
    assert rows["w/o L_semAlign"][headers.index("clip_dir ↑") - 1] == "0.0706"
