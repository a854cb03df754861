"""Evaluation runs end to end on the tiny zoo: multi-turn chaining, resuming, the report, `edit`."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from components.data.demo import PHOTOS
from components.editing import Editor
from components.evaluation.baseline import InstructPix2PixBaseline
from components.evaluation.benchmarks import load_emu_edit, load_magicbrush
from components.evaluation.demo_benchmarks import write_emu_edit_demo, write_magicbrush_demo
from components.evaluation.metrics import load_metric_models
from components.evaluation.report import table_rows, write_report
from components.evaluation.run import evaluate_emu_edit, evaluate_magicbrush
from components.evaluation.systems import CachedSystem, EditCache, edit_baseline, edit_ours
from flows.cli import app


@pytest.fixture(scope="module")
def harness(zoo_params, tmp_path_factory):
    """The systems' edit functions and the metric models, loaded once."""
    params = zoo_params.model_copy(
        update={"method": zoo_params.method.model_copy(update={"tau": 0.52})}
    )
    models = params.models
    editor = Editor.from_params(params)
    baseline = InstructPix2PixBaseline.load(models.baseline, 64, 2, 7.5, 1.5)
    metric_models = load_metric_models(models.metric_clip, None, models.dino)
    data = tmp_path_factory.mktemp("benchmarks")
    return {
        "ours": partial(edit_ours, editor, seed=0),
        "baseline": partial(edit_baseline, baseline, seed=0),
        "models": metric_models,
        "emu_edit": write_emu_edit_demo(data / "emu_edit", seed=0, count=6),
        "magicbrush": write_magicbrush_demo(data / "magicbrush", seed=0, sessions=3),
    }


def systems(harness, folder: Path) -> dict[str, CachedSystem]:
    return {
        name: CachedSystem(harness[name], EditCache(folder / name)) for name in ("ours", "baseline")
    }


def test_resumed_evaluation_equals_an_uninterrupted_one(harness, tmp_path):
    cases = load_emu_edit(harness["emu_edit"])
    whole = evaluate_emu_edit(
        cases, systems(harness, tmp_path / "a"), harness["models"], 4, progress=False
    )
    evaluate_emu_edit(
        cases[:2], systems(harness, tmp_path / "b"), harness["models"], 4, progress=False
    )  # the run that was cut short
    resumed = evaluate_emu_edit(
        cases, systems(harness, tmp_path / "b"), harness["models"], 4, progress=False
    )
    assert resumed.scores == whole.scores and resumed.rows == whole.rows
    assert len(whole.rows) == 2 * len(cases)
    tasks = {case.task for case in cases}
    assert {f"ours/{task}/clip_dir" for task in tasks} <= set(whole.scores)


def test_multi_turn_edits_the_systems_own_previous_output(harness, tmp_path):
    sessions = [s for s in load_magicbrush(harness["magicbrush"]) if len(s.turns) > 1]
    assert sessions, "the demo MagicBrush set has sessions of several turns"
    folder = tmp_path / "mb"
    result = evaluate_magicbrush(
        sessions, systems(harness, folder), harness["models"], 4, progress=False
    )
    session = sessions[0]
    first = np.asarray(Image.open(folder / "ours" / f"{session.id}-turn1.png"))
    second = np.asarray(Image.open(folder / "ours" / f"{session.id}-turn2-multi.png"))
    region = np.asarray(Image.open(folder / "ours" / f"{session.id}-turn2-multi-region.png"))
    outside = region == 0
    assert outside.any()
    # ours keeps its input outside the region: that input was our own turn-1 edit...
    assert np.array_equal(second[outside], first[outside])
    # ...and not the ground-truth input of turn 2
    gt_input = np.asarray(session.turns[1].input_image)
    assert not np.array_equal(second[outside], gt_input[outside])
    settings = {row["setting"] for row in result.rows}
    assert settings == {"single", "multi"}
    assert {"ours/single/l1", "ours/multi/l1", "baseline/multi/dino"} <= set(result.scores)
    multi = [row for row in result.rows if row["setting"] == "multi"]
    assert len(multi) == 2 * len(sessions)  # the final turn only, per system


def test_report_lays_out_the_tables(tmp_path):
    scores = {
        "1M": {
            "emu_edit": {
                "ours/clip_dir": 0.1,
                "ours/l1": 0.2,
                "baseline/l1": 0.3,
                "ours/add/l1": 0.4,
                "baseline/add/l1": 0.5,
            }
        },
        "2M": {"emu_edit": {"ours/clip_dir": 0.15, "ours/l1": 0.25, "baseline/l1": 0.3}},
    }
    published = {"emu_edit": [{"method": "Paper", "clip_dir": 0.11}]}
    tables = table_rows(scores, {"1M": 10, "2M": 20}, published)
    methods = [(row["method"], row["source"]) for row in tables["emu_edit"]]
    assert methods == [
        ("ours (1M)", "this run"),
        ("ours (2M)", "this run"),
        ("InstructPix2Pix (same harness)", "this run"),
        ("Paper", "published"),
    ]
    assert tables["magicbrush_single"] == []
    per_task = {row["method"]: row["l1"] for row in tables["emu_edit_tasks"]}
    assert per_task == {"ours (1M) · add": 0.4, "InstructPix2Pix (same harness) · add": 0.5}
    write_report(tables, tmp_path)
    markdown = (tmp_path / "tables.md").read_text()
    assert "| ours (2M) | this run | 0.1500 |" in markdown and "| Paper | published |" in markdown
    assert (tmp_path / "scaling.png").stat().st_size > 0
    assert "20,emu_edit,l1,0.25" in (tmp_path / "scaling.csv").read_text()


def test_edit_command_writes_the_edit_and_the_region(zoo_params, tmp_path, prefect_harness):
    params = tmp_path / "params.yaml"
    params.write_text(zoo_params.model_dump_json())
    out = tmp_path / "cat.png"
    result = CliRunner().invoke(
        app,
        [
            "edit",
            "--image",
            str(PHOTOS / "chelsea.png"),
            "--instruction",
            "make the cat blue",
            "--original-description",
            "an orange cat",
            "--out",
            str(out),
            "--params",
            str(params),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "t_e: 'a blue cat'" in result.output
    source = Image.open(PHOTOS / "chelsea.png")
    assert Image.open(out).size == Image.open(tmp_path / "cat-region.png").size == source.size
    missing = CliRunner().invoke(
        app,
        [
            "edit",
            "--image",
            str(tmp_path / "nope.jpg"),
            "--instruction",
            "x",
            "--params",
            str(params),
        ],
    )
    assert missing.exit_code == 2 and "nope.jpg" in missing.output


def test_cached_edits_are_reused_only_with_the_same_settings(zoo_params, tmp_path):
    from flows.evaluate import reuse_only_same_settings

    out, data = tmp_path / "emu", tmp_path / "data"
    reuse_only_same_settings(out, zoo_params, "emu_edit", data, None)
    (out / "ours").mkdir()
    (out / "ours" / "0.json").write_text("{}")
    reuse_only_same_settings(out, zoo_params, "emu_edit", data, None)  # a resume
    assert (out / "ours" / "0.json").is_file()
    changed = zoo_params.model_copy(
        update={"method": zoo_params.method.model_copy(update={"tau": 0.9})}
    )
    reuse_only_same_settings(out, changed, "emu_edit", data, None)
    assert not (out / "ours").exists() and (out / "identity.json").is_file()
