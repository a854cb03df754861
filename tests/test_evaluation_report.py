"""The report: the paper's Tables 2-4 beside labelled measured rows, and the scaling plot."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from components.config import load_params
from components.evaluation.labels import provenance
from components.evaluation.report import (
    EMU_EDIT_COLUMNS,
    PUBLISHED,
    load_published,
    metric_notes,
    report_tables,
    write_report,
)

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
        ("copy of the input (trivial system), same harness", "this run"),
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
    assert "## Table 4: loss ablation" in markdown and "No ablation run exists" in markdown
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


def test_provenance_tells_the_random_zoo_from_real_checkpoints():
    default = load_params(ROOT / "params.yaml").models
    paper = load_params(ROOT / "infra" / "profiles" / "paper.yaml")
    assert set(provenance(default).values()) == {"random"}
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
    markdown = report_flow(Params(), tmp_path / "reports", metrics).read_text()
    assert "ours (default profile, 48 training samples, random models) | this run | 3M" in markdown
    assert "2M |" not in markdown  # a scale without an evaluation is left out
