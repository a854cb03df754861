"""Benchmark loaders on the embedded benchmarks, written in the published formats, and on broken
copies of them: counts, order, chaining, both MagicBrush layouts, and errors that name the file."""

from __future__ import annotations

import json
import shutil
from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.evaluation.benchmarks import (
    BenchmarkError,
    MagicBrushSession,
    load_emu_edit,
    load_magicbrush,
)
from components.evaluation.demo_benchmarks import (
    EMU_EDIT_SCHEMA,
    EMU_EDIT_TASKS,
    HF_IMAGE,
    write_emu_edit_demo,
    write_magicbrush_demo,
)

HF_MAGICBRUSH_SCHEMA = pa.schema(
    [
        ("img_id", pa.string()),
        ("turn_index", pa.int32()),
        ("source_img", HF_IMAGE),
        ("mask_img", HF_IMAGE),
        ("instruction", pa.string()),
        ("target_img", HF_IMAGE),
    ]
)


@pytest.fixture(scope="module")
def emu_edit(tmp_path_factory) -> Path:
    return write_emu_edit_demo(tmp_path_factory.mktemp("emu-edit"), seed=0)


@pytest.fixture(scope="module")
def magicbrush(tmp_path_factory) -> Path:
    return write_magicbrush_demo(tmp_path_factory.mktemp("magicbrush"), seed=0)


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def pixels(session: MagicBrushSession) -> list[tuple[np.ndarray, ...]]:
    return [
        tuple(np.asarray(i) for i in (t.input_image, t.target_image, t.mask_image))
        for t in session.turns
    ]


def test_emu_edit_demo_is_the_real_schema_and_repeats_byte_for_byte(emu_edit, tmp_path):
    assert pq.read_schema(emu_edit).equals(EMU_EDIT_SCHEMA, check_metadata=True)
    assert emu_edit.read_bytes() == write_emu_edit_demo(tmp_path / "again", seed=0).read_bytes()
    assert emu_edit.read_bytes() != write_emu_edit_demo(tmp_path / "other", seed=1).read_bytes()


def test_emu_edit_demo_loads_through_the_real_loader(emu_edit):
    cases = load_emu_edit(emu_edit.parent)  # a folder of parquet files works too
    assert [c.id for c in cases] == [str(i) for i in range(12)]
    assert {c.task for c in cases} == set(EMU_EDIT_TASKS)
    for case in cases:
        assert case.image.mode == "RGB" and max(case.image.size) <= 192
        assert case.instruction and case.input_caption != case.output_caption
    background = next(c for c in cases if c.task == "background")
    assert background.output_caption.endswith(f"{background.instruction.split()[-1]} background")
    assert [c.id for c in load_emu_edit(emu_edit, limit=5)] == ["0", "1", "2", "3", "4"]


def test_emu_edit_keeps_only_the_asked_split(emu_edit, tmp_path):
    table = pq.read_table(emu_edit)
    splits = ["validation" if i % 3 == 0 else "test" for i in range(table.num_rows)]
    mixed = table.set_column(table.schema.get_field_index("split"), "split", pa.array(splits))
    pq.write_table(mixed, tmp_path / "mixed.parquet")
    test = load_emu_edit(tmp_path / "mixed.parquet")
    assert [int(c.id) for c in test] == [i for i in range(12) if i % 3]
    assert [int(c.id) for c in load_emu_edit(tmp_path, split="validation")] == [0, 3, 6, 9]
    with pytest.raises(BenchmarkError, match=r"no rows of split 'train'.*\['test', 'validation'\]"):
        load_emu_edit(tmp_path, split="train")


def test_emu_edit_errors_name_the_path_and_the_column(emu_edit, tmp_path):
    with pytest.raises(BenchmarkError, match="nowhere"):
        load_emu_edit(tmp_path / "nowhere")
    table = pq.read_table(emu_edit)
    pq.write_table(table.drop_columns(["output_caption"]), tmp_path / "short.parquet")
    with pytest.raises(BenchmarkError, match=r"short\.parquet: no column 'output_caption'"):
        load_emu_edit(tmp_path / "short.parquet")
    (tmp_path / "text.parquet").write_text("not parquet")
    with pytest.raises(BenchmarkError, match=r"text\.parquet: not a readable parquet file"):
        load_emu_edit(tmp_path / "text.parquet")


def test_a_bad_emu_edit_image_fails_only_when_opened(emu_edit, tmp_path):
    table = pq.read_table(emu_edit)
    cells = table["image"].to_pylist()
    cells[1], cells[2] = {"bytes": None, "path": None}, {"bytes": b"\x89PNG broken", "path": None}
    broken = table.set_column(1, "image", pa.array(cells, HF_IMAGE))
    pq.write_table(broken, tmp_path / "broken.parquet")
    cases = load_emu_edit(tmp_path / "broken.parquet")
    assert len(cases) == 12 and cases[0].image.size
    with pytest.raises(BenchmarkError, match=r"broken\.parquet#1:image: the image cell is empty"):
        cases[1].image  # noqa: B018
    with pytest.raises(BenchmarkError, match=r"broken\.parquet#2:image: not a readable image"):
        cases[2].image  # noqa: B018


def test_magicbrush_demo_repeats_byte_for_byte(magicbrush, tmp_path):
    assert files_of(magicbrush) == files_of(write_magicbrush_demo(tmp_path / "again", seed=0))
    assert files_of(magicbrush) != files_of(write_magicbrush_demo(tmp_path / "other", seed=1))


def test_magicbrush_demo_loads_in_order_with_chained_turns_and_masked_edits(magicbrush):
    sessions = load_magicbrush(magicbrush)
    assert [s.id for s in sessions] == sorted(s.id for s in sessions)
    assert sorted(len(s.turns) for s in sessions) == [1, 1, 2, 2, 3, 3]
    assert sum(len(s.turns) for s in sessions) == 12
    assert [s.id for s in load_magicbrush(magicbrush / "test")] == [s.id for s in sessions]
    assert [s.id for s in load_magicbrush(magicbrush, limit=2)] == [s.id for s in sessions[:2]]
    for session in sessions:
        assert [t.turn for t in session.turns] == list(range(1, len(session.turns) + 1))
        turns = pixels(session)
        for (_, previous_target, _), (source, _, _) in pairwise(turns):
            assert np.array_equal(source, previous_target)  # turn k edits turn k-1's output
        for source, target, mask in turns:
            changed = np.any(source != target, axis=-1)
            assert changed.any() and not changed[mask == 0].any()  # visible, and only inside


def write_hf_magicbrush(sessions: list[MagicBrushSession], folder: Path) -> Path:
    """The same turns as osunlp/MagicBrush's parquet: rows shuffled, two shards."""
    rows = [
        {
            "img_id": session.id,
            "turn_index": turn.turn,
            "source_img": {"bytes": turn.source.path.read_bytes(), "path": None},
            "mask_img": {"bytes": turn.mask.path.read_bytes(), "path": None},
            "instruction": turn.instruction,
            "target_img": {"bytes": turn.target.path.read_bytes(), "path": None},
        }
        for session in sessions
        for turn in session.turns
    ]
    rows = rows[::-1]
    folder.mkdir(parents=True)
    for shard, part in enumerate((rows[:5], rows[5:])):
        file = folder / f"dev-{shard:05d}-of-00002.parquet"
        pq.write_table(pa.Table.from_pylist(part, schema=HF_MAGICBRUSH_SCHEMA), file)
    return folder


def test_both_magicbrush_layouts_load_the_same_sessions(magicbrush, tmp_path):
    official = load_magicbrush(magicbrush)
    hf = load_magicbrush(write_hf_magicbrush(official, tmp_path / "hf"))
    assert [(s.id, len(s.turns)) for s in hf] == [(s.id, len(s.turns)) for s in official]
    for ours, theirs in zip(official, hf, strict=True):
        assert [t.instruction for t in ours.turns] == [t.instruction for t in theirs.turns]
        for a, b in zip(pixels(ours), pixels(theirs), strict=True):
            assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    limited = load_magicbrush(tmp_path / "hf", limit=3)
    assert [s.id for s in limited] == [s.id for s in official[:3]]


def test_magicbrush_errors_name_the_file(magicbrush, tmp_path):
    with pytest.raises(BenchmarkError, match=r"nowhere: not a MagicBrush test set"):
        load_magicbrush(tmp_path / "nowhere")
    copy = shutil.copytree(magicbrush, tmp_path / "copy")
    sessions_file = copy / "test" / "edit_sessions.json"
    sessions = json.loads(sessions_file.read_text())
    img_id = sorted(sessions)[0]
    missing = copy / "test" / "images" / img_id / sessions[img_id][0]["mask"]
    missing.unlink()
    with pytest.raises(BenchmarkError, match=f"no such image file {missing}"):
        load_magicbrush(copy)
    del sessions[img_id][0]["instruction"]
    sessions_file.write_text(json.dumps(sessions))
    with pytest.raises(BenchmarkError, match=f"session '{img_id}', turn 1: no instruction"):
        load_magicbrush(copy)
    sessions_file.write_text("{ not json")
    with pytest.raises(BenchmarkError, match=r"edit_sessions\.json: not readable JSON"):
        load_magicbrush(copy)


def test_magicbrush_parquet_errors(magicbrush, tmp_path):
    hf = write_hf_magicbrush(load_magicbrush(magicbrush), tmp_path / "hf")
    shard = hf / "dev-00000-of-00002.parquet"
    pq.write_table(pq.read_table(shard).drop_columns(["mask_img"]), shard)
    with pytest.raises(BenchmarkError, match=r"dev-00000-of-00002\.parquet: no column 'mask_img'"):
        load_magicbrush(hf)
    shutil.copy(hf / "dev-00001-of-00002.parquet", hf / "train-00000-of-00001.parquet")
    with pytest.raises(BenchmarkError, match="holds training shards"):
        load_magicbrush(hf)
