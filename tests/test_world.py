"""The world's known answers: edits agree with the template writer, regions are exactly the
edited pixels, distractors are there when asked, `regionedit world` writes both benchmarks in
formats their loaders read back, and training sees only pictures and captions."""

from __future__ import annotations

import io
import json
import random
import tarfile
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from components.config import Params, PrepareConfig, WorldConfig
from components.data.records import SourceRecord
from components.data.scenes import (
    BACKGROUNDS,
    DRAWN_SHAPES,
    OBJECT_COLOURS,
    Scene,
    SceneObject,
    scene_graph,
)
from components.describe.template import apply_instruction
from components.evaluation.benchmarks import load_emu_edit, load_magicbrush
from components.evaluation.formats import EMU_EDIT_TASKS
from components.world.edits import KINDS, beside, distractors, edit_scene, options, world_session
from components.world.testsets import EMU_EDIT_TASK, world_sessions, write_world
from flows.cli import app

runner = CliRunner()
EDITS = [
    edit
    for seed in range(4)
    for index in range(12)
    for kind in KINDS
    for distractor in (False, True)
    for edit in world_session(seed, index, kind, distractor, turns=2)
]


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def test_t_e_is_the_template_writers_and_the_target_scenes_caption():
    assert {edit.kind for edit in EDITS} == set(KINDS)
    for edit in EDITS:
        assert apply_instruction(edit.t_o, edit.t_ins) == edit.t_e == edit.target.caption
        assert edit.t_o == edit.source.caption
        old = edit.source.objects[edit.index]
        assert f"the {old.colour} {old.shape}" in edit.t_ins
        names = [(o.colour, o.shape) for o in edit.target.objects]
        assert len(names) == len(set(names))  # the instruction's name stays unique
        if edit.kind == "remove":
            assert len(edit.target.objects) == len(edit.source.objects) - 1
            continue
        new = edit.target.objects[edit.index]
        assert (new.size, new.cell, new.dx, new.dy) == (old.size, old.cell, old.dx, old.dy)
        if edit.kind == "recolour":
            assert new.shape == old.shape
            assert new.colour not in (old.colour, edit.source.background)
        else:
            assert new.colour == old.colour and new.shape != old.shape
        assert new.colour in OBJECT_COLOURS and new.shape in DRAWN_SHAPES  # the drawn words only
        assert edit.source.background in BACKGROUNDS


def test_an_edit_with_no_free_option_is_refused_by_name():
    # three red objects take every drawn shape: the red circle cannot turn into another
    reds = tuple(
        SceneObject("red", shape, "small", cell) for cell, shape in enumerate(DRAWN_SHAPES)
    )
    scene = Scene("grey", reds)
    assert options(scene, 0, "reshape") == []
    assert len(options(scene, 0, "recolour")) == len(OBJECT_COLOURS) - 1
    with pytest.raises(ValueError, match="no reshape of the red circle"):
        edit_scene(scene, 0, "reshape", random.Random(0))


@pytest.mark.parametrize("side", [32, 64, 100])
def test_the_region_is_exactly_the_edited_objects_pixels(side):
    for edit in EDITS:
        source, target = pixels(edit.source_image(side)), pixels(edit.target_image(side))
        changed = np.any(source != target, axis=-1)
        before = edit.source.mask(edit.index, side)
        after = (
            edit.target.mask(edit.index, side) if edit.kind != "remove" else np.zeros_like(before)
        )
        region = edit.region(side)
        assert region.shape == (side, side) and region.dtype == bool
        assert np.array_equal(region, before | after)
        # every pixel of the region changes, but where a reshape's old and new shapes overlap
        assert np.array_equal(changed, before ^ after if edit.kind == "reshape" else region)


def test_a_distractor_is_beside_the_edited_object_when_asked():
    for seed in range(3):
        for index in range(20):
            for kind in KINDS:
                with_one = world_session(seed, index, kind, distractor=True)[0]
                cell = with_one.source.objects[with_one.index].cell
                similar = distractors(with_one.source, with_one.index)
                assert with_one.distractor and len(with_one.source.objects) in (2, 3)
                assert any(beside(cell, with_one.source.objects[i].cell) for i in similar)
                without = world_session(seed, index, kind, distractor=False)[0]
                assert not without.distractor and not distractors(without.source, without.index)
    for edit in EDITS:  # later turns carry the flag their scene has
        assert edit.distractor == bool(distractors(edit.source, edit.index))


def test_world_command_writes_both_benchmarks_that_their_loaders_read(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("world:\n  side: 48\n")
    out = tmp_path / "world"
    result = runner.invoke(
        app, ["world", "--seed", "7", "--count", "8", "--out", str(out), "--params", str(params)]
    )
    assert result.exit_code == 0, result.output
    assert "magicbrush: 8 sessions (2 of two turns), 10 edits" in result.output
    assert "emu_edit: 8 edits (recolour 3 · remove 3 · reshape 2)" in result.output
    expected = world_sessions(7, 8)

    sessions = load_magicbrush(out / "magicbrush")
    assert [len(s.turns) for s in sessions] == [len(e) for e in expected]
    for session, edits in zip(sessions, expected, strict=True):
        for turn, edit in zip(session.turns, edits, strict=True):
            assert turn.instruction == edit.t_ins and turn.caption  # the local description
            assert (turn.kind, turn.distractor) == (edit.kind, edit.distractor)
            assert np.array_equal(pixels(turn.input_image), pixels(edit.source_image(48)))
            assert np.array_equal(pixels(turn.target_image), pixels(edit.target_image(48)))
            assert np.array_equal(pixels(turn.mask_image) == 255, edit.region(48))
    described = load_magicbrush(out / "magicbrush", captions="global")
    assert [t.caption for s in described for t in s.turns] == [e.t_e for s in expected for e in s]

    cases = load_emu_edit(out / "emu_edit")
    assert [c.id for c in cases] == [str(i) for i in range(8)]
    for case, edits in zip(cases, expected, strict=True):
        edit = edits[0]
        assert (case.instruction, case.input_caption, case.output_caption) == (
            edit.t_ins,
            edit.t_o,
            edit.t_e,
        )
        assert case.task in EMU_EDIT_TASKS
        assert (case.task, case.distractor) == (EMU_EDIT_TASK[edit.kind], edit.distractor)
        assert np.array_equal(pixels(case.image), pixels(edit.source_image(48)))
        assert np.array_equal(pixels(case.target.open("RGB")), pixels(edit.target_image(48)))
        assert np.array_equal(pixels(case.mask.open("L")) == 255, edit.region(48))

    world = json.loads((out / "world.json").read_text())
    assert (world["seed"], world["count"], world["side"]) == (7, 8, 48)
    assert world["emu_edit"]["kinds"] == {"recolour": 3, "remove": 3, "reshape": 2}
    assert world["emu_edit"]["distractor_share"] == 0.375  # sessions 3, 4 and 5 of 0…7
    assert world["magicbrush"]["multi_turn_sessions"] == 2


@pytest.mark.parametrize(("option", "value"), [("--count", "0"), ("--side", "16")])
def test_world_command_names_a_bad_option(tmp_path, option, value):
    params = tmp_path / "params.yaml"
    params.write_text("seed: 0\n")
    result = runner.invoke(
        app, ["world", option, value, "--out", str(tmp_path / "w"), "--params", str(params)]
    )
    assert result.exit_code == 2 and option in result.output
    assert not (tmp_path / "w").exists()


def test_same_seed_same_bytes_other_seed_other_scenes(tmp_path):
    write_world(tmp_path / "a", seed=3, count=6, side=32)
    write_world(tmp_path / "b", seed=3, count=6, side=32)
    write_world(tmp_path / "c", seed=4, count=6, side=32)
    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")
    assert [s[0].source for s in world_sessions(3, 6)] != [
        s[0].source for s in world_sessions(4, 6)
    ]
    assert (
        files_of(tmp_path / "a")["emu_edit/test-00000-of-00001.parquet"]
        != files_of(tmp_path / "c")["emu_edit/test-00000-of-00001.parquet"]
    )
    training = {scene_graph(3, i) for i in range(200)}
    assert not training & {s[0].source for s in world_sessions(3, 6)}


def test_training_records_are_a_picture_and_a_caption_only():
    from components.data.sources import open_source, source_kind

    assert source_kind("world") == "world"
    assert {f.name for f in fields(SourceRecord)} == {"ref", "caption", "data", "path", "error"}
    records = list(open_source("world", "image", "caption", 0, 5, WorldConfig(scenes=4, side=48)))
    assert [r.ref for r in records] == [f"world:scene-{i:06d}" for i in range(4)]
    for index, record in enumerate(records):
        graph = scene_graph(5, index)
        assert (record.caption, record.path, record.error) == (graph.caption, None, None)
        with Image.open(io.BytesIO(record.data)) as image:
            assert np.array_equal(pixels(image.convert("RGB")), pixels(graph.render(48)))


def test_prepare_on_the_world_writes_only_pictures_and_captions(tmp_path):
    from flows.prepare import build_shards

    params = Params(
        seed=2,
        prepare=PrepareConfig(source="world", workers=1, samples_per_shard=3),
        world=WorldConfig(scenes=5, side=64),
    )
    summary = build_shards.fn("world", tmp_path, params, None)
    assert (summary.accepted, summary.shards) == (5, 2)
    members: dict[str, dict[str, bytes]] = {}
    for shard in sorted((tmp_path / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                key, _, ext = member.name.partition(".")
                members.setdefault(key, {})[ext] = tar.extractfile(member).read()
    assert len(members) == 5
    for files in members.values():
        assert set(files) == {"png", "json"}
        meta = json.loads(files["json"])
        assert set(meta) == {"caption", "source"}
        graph = scene_graph(2, int(meta["source"].removeprefix("world:scene-")))
        assert meta["caption"] == graph.caption
        with Image.open(io.BytesIO(files["png"])) as image:
            assert np.array_equal(pixels(image.convert("RGB")), pixels(graph.render(64)))
