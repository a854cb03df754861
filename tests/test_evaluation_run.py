"""Evaluation runs end to end on the tiny zoo: multi-turn chaining, resuming, the copy of the
input, MagicBrush's CLIP-T and region IoU, every system on a set with known answers, the random
region, what each run records, `edit`."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from components.data.demo import PHOTOS
from components.editing import Editor
from components.evaluation.baseline import InstructPix2PixBaseline
from components.evaluation.benchmarks import EmuEditCase, load_emu_edit, load_magicbrush
from components.evaluation.demo_benchmarks import write_emu_edit_demo, write_magicbrush_demo
from components.evaluation.metrics import load_metric_models, region_overlap
from components.evaluation.run import evaluate_emu_edit, evaluate_magicbrush
from components.evaluation.systems import (
    CachedSystem,
    EditCache,
    EditRequest,
    copy_of_input,
    edit_baseline,
    editor_systems,
    random_area,
)
from flows.cli import app
from flows.evaluate import SYSTEMS

KNOWN_ANSWERS = ("region_iou", "region_recall", "region_iou_grid", "edit_success")


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
    return editor_systems(editor, editor, seed=0) | {  # no checkpoint: ours is untrained too
        "baseline": partial(edit_baseline, baseline, seed=0),
        "models": metric_models,
        "grid": editor.model.encoders.grid,
        "emu_edit": write_emu_edit_demo(data / "emu_edit", seed=0, count=6),
        "magicbrush": write_magicbrush_demo(data / "magicbrush", seed=0, sessions=3),
    }


def systems(harness, folder: Path, names: tuple[str, ...] = ("ours", "baseline")) -> dict:
    return {name: CachedSystem(harness[name], EditCache(folder / name)) for name in names} | {
        "copy": copy_of_input
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
    assert len(whole.rows) == 3 * len(cases)
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
    assert len(multi) == 3 * len(sessions)  # the final turn only, per system


def test_the_copy_of_the_input_scores_as_doing_nothing_on_emu_edit(harness, tmp_path):
    cases = load_emu_edit(harness["emu_edit"])
    result = evaluate_emu_edit(
        cases, systems(harness, tmp_path), harness["models"], 2, progress=False
    )
    scores = result.scores
    assert scores["copy/l1"] == 0.0 and scores["copy/clip_dir"] == 0.0
    assert scores["copy/clip_img"] == pytest.approx(1.0, abs=1e-5)
    assert scores["copy/dino"] == pytest.approx(1.0, abs=1e-5)
    assert scores["ours/l1"] >= scores["copy/l1"]
    # ours records its region per case: the mean share and the share of empty regions
    ours = [row for row in result.rows if row["system"] == "ours"]
    fractions = [row["region_fraction"] for row in ours]
    assert scores["ours/region_fraction"] == pytest.approx(np.mean(fractions))
    assert scores["ours/empty_region"] == pytest.approx(np.mean([f == 0 for f in fractions]))
    assert scores["copy/region_fraction"] == 0.0 and scores["copy/empty_region"] == 1.0
    assert not any(name.endswith(KNOWN_ANSWERS) for name in scores)  # the set has no answers


def test_magicbrush_clip_t_and_region_iou_follow_the_test_sets_own_files(harness, tmp_path):
    sessions = load_magicbrush(harness["magicbrush"])
    folder = tmp_path / "mb"
    result = evaluate_magicbrush(
        sessions, systems(harness, folder), harness["models"], 2, progress=False
    )
    described = json.loads((harness["magicbrush"] / "test" / "local_descriptions.json").read_text())
    models = harness["models"]
    single = {
        (r["system"], r["session"], r["turn"]): r for r in result.rows if r["setting"] == "single"
    }
    for session in sessions:
        for turn in session.turns:
            caption = described[session.id][f"{session.id}-output{turn.turn}.png"]
            assert turn.caption == caption
            # the copy's edit is the turn's input: CLIP-T = cos(E_img(input), E_txt(caption))
            direct = models.clip_images([turn.input_image]) @ models.clip_texts([caption]).T
            copy = single[("copy", session.id, turn.turn)]
            assert copy["clip_t"] == pytest.approx(direct.item(), abs=1e-5)
            ours = single[("ours", session.id, turn.turn)]
            region = Image.open(folder / "ours" / f"{session.id}-turn{turn.turn}-region.png")
            iou = region_overlap(region, turn.mask_image).iou
            assert ours["region_iou"] == pytest.approx(iou)
    for name in ("ours/single/clip_t", "copy/multi/clip_t", "ours/single/region_iou"):
        assert not np.isnan(result.scores[name]), name


def test_every_system_is_scored_on_a_set_with_known_answers(harness, tmp_path, caplog):
    sessions = load_magicbrush(harness["magicbrush"], limit=1)
    names = tuple(name for name in SYSTEMS if name != "copy")
    folder = tmp_path / "mb"
    result = evaluate_magicbrush(
        sessions, systems(harness, folder, names), harness["models"], 2, harness["grid"], False
    )
    scores = result.scores
    for name in SYSTEMS:
        for metric in ("l1", "clip_i", "region_fraction", *KNOWN_ANSWERS):
            assert f"{name}/single/{metric}" in scores, (name, metric)
        assert f"{name}/multi/edit_success" in scores
    assert scores["whole_image/single/region_fraction"] == 1.0
    assert scores["whole_image/single/region_recall"] == 1.0
    # the ceiling repaints the truth, and the gap between it and the image's border where that
    # is narrower than the feather (a masked shape in the demo set may be 2 pixels from it)
    assert scores["ground_truth/single/region_recall"] == 1.0
    assert scores["ground_truth/single/region_precision"] > 0.8
    assert scores["copy/single/edit_success"] == 0.0 and scores["copy/single/empty_region"] == 1.0
    # every system that edits with our editor read the same descriptions of each input
    described: dict[str, set] = {}
    for row in result.rows:
        if row["setting"] == "single" and row["system"] not in ("baseline", "copy"):
            described.setdefault(row["case"], set()).add((row["t_o"], row["t_e"]))
    assert all(len(descriptions) == 1 for descriptions in described.values())
    # the Emu Edit format with the world's fields: per task, per distractor subgroup
    turns = [turn for session in sessions for turn in session.turns]
    cases = [
        EmuEditCase(
            str(n),
            t.source,
            t.instruction,
            "add",
            "a picture",
            t.caption or "a picture",
            distractor=n % 2 == 0,
            mask=t.mask,
            target=t.target,
        )
        for n, t in enumerate(turns)
    ]
    emu = evaluate_emu_edit(
        cases,
        systems(harness, tmp_path / "emu", names),
        harness["models"],
        2,
        harness["grid"],
        False,
    ).scores
    for name in SYSTEMS:
        assert f"{name}/add/edit_success" in emu and f"{name}/clip_dir" in emu
        assert f"{name}/distractor/region_iou" in emu and f"{name}/no distractor/region_iou" in emu
    # on a set without ground-truth regions the systems that need one are left out, saying so
    demo = load_emu_edit(harness["emu_edit"])[:1]
    with caplog.at_level(logging.INFO, logger="components.evaluation.run"):
        plain = evaluate_emu_edit(
            demo, systems(harness, tmp_path / "plain", names), harness["models"], 2, None, False
        ).scores
    assert not any(name.startswith(("random_area/", "ground_truth/")) for name in plain)
    assert {"untrained/clip_dir", "whole_image/region_fraction"} <= plain.keys()
    assert "ground_truth needs a ground-truth region, which 1 of 1 cases lack" in caplog.text


def test_the_random_area_has_the_truths_area_inside_the_image_at_a_seeded_place():
    truth = np.zeros((40, 60), np.uint8)
    truth[5:12, 10:21] = 255  # 77 pixels: no square has that area
    request = EditRequest("case", Image.new("RGB", (60, 40)), "x", truth=Image.fromarray(truth))
    first, again, other = (np.asarray(random_area(request, s)) > 127 for s in (1, 1, 2))
    assert first.sum() == other.sum() == 77
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    rows, columns = np.nonzero(first)
    assert columns.max() - columns.min() + 1 == 9  # ceil(sqrt(77)): 8 rows of 9 and one of 5
    wide = replace(request, truth=Image.fromarray(np.pad(np.full((38, 58), 255, np.uint8), 1)))
    assert (np.asarray(random_area(wide, 3)) > 127).sum() == 38 * 58  # nearly the whole image
    empty = replace(request, truth=Image.new("L", (60, 40)))
    assert not np.asarray(random_area(empty, 3)).any()


def test_edit_command_writes_the_edit_and_the_region(zoo_params, tmp_path, prefect_harness):
    params = tmp_path / "params.yaml"
    settings = zoo_params.model_copy(  # no trained head of another run may be picked up
        update={"train": zoo_params.train.model_copy(update={"out": str(tmp_path / "heads")})}
    )
    params.write_text(settings.model_dump_json())
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
    reuse_only_same_settings(out, zoo_params, "1M", "emu_edit", data, None)
    (out / "ours").mkdir()
    (out / "ours" / "0.json").write_text("{}")
    reuse_only_same_settings(out, zoo_params, "1M", "emu_edit", data, None)  # a resume
    assert (out / "ours" / "0.json").is_file()
    changed = zoo_params.model_copy(
        update={"method": zoo_params.method.model_copy(update={"tau": 0.9})}
    )
    reuse_only_same_settings(out, changed, "1M", "emu_edit", data, None)
    assert not (out / "ours").exists() and (out / "identity.json").is_file()


def test_the_evaluation_record_says_what_ran(zoo_params, tmp_path):
    from flows.evaluate import run_label, what_ran

    record = what_ran(zoo_params, "1M", "emu_edit", None)
    assert record["profile"] == "default" and record["training_samples"] == zoo_params.scales["1M"]
    assert record["models"] == {
        "ours": "random models",
        "baseline": "random models",
        "metrics": "random models",
    }
    assert record["baseline_settings"]["steps"] == zoo_params.evaluate.baseline_steps
    summary = {"scale": "1M", **record}
    label = run_label(summary)
    assert label == (
        f"evaluate 1M: default profile, {zoo_params.scales['1M']} training samples, "
        "random models, untrained head"
    )


def test_the_systems_no_head_changes_run_once_at_the_largest_scale(zoo_params):
    from flows.evaluate import SYSTEMS, systems_at

    scales = {"1M": 10, "2M": 30, "3M": 20}
    params = zoo_params.model_copy(update={"scales": scales})
    assert systems_at(params, "2M") == SYSTEMS
    assert systems_at(params, "1M") == systems_at(params, "3M") == ("ours", "copy")
