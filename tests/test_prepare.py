"""prepare_dataset end to end on a mixed folder: counts add up, nothing is lost, bytes repeat."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import webdataset as wds
from PIL import Image

from components.data.prepare import STATE, ordered_map, prepare_dataset
from components.data.sources import folder_records, source_identity
from tests.conftest import LIMITS, ROOT, image_bytes, noise_image, write_folder


def mixed_folder(root: Path) -> Path:
    """Good images of several kinds, and one input of every bad kind."""
    good = {f"good{i}.png": image_bytes(noise_image(i)) for i in range(5)}
    good["photo.jpg"] = image_bytes(noise_image(10), "JPEG")
    good["gray.png"] = image_bytes(noise_image(11).convert("L"))
    bad = {
        "empty.jpg": b"",
        "fake.jpg": b"GIF89a? no, just text",
        "cut.png": image_bytes(noise_image(12, (96, 96)))[:300],
        "tiny.png": image_bytes(noise_image(13, (8, 8))),
        "copy.png": image_bytes(noise_image(0)),  # same pixels as good0.png
        "copy.jpg": image_bytes(noise_image(0), "JPEG", quality=100),  # lossy: not a duplicate
        "blank.png": image_bytes(noise_image(14)),
        "latin1.png": image_bytes(noise_image(15)),
        "uncaptioned.png": image_bytes(noise_image(16)),
    }
    captions = [(name, f"caption of {name}") for name in good]
    captions += [
        (name, "a bad input")
        for name in ("empty.jpg", "fake.jpg", "cut.png", "tiny.png", "copy.png", "copy.jpg")
    ]
    captions += [
        ("blank.png", "   "),
        ("missing.png", "an image that is not there"),
        ("latin1.png", "PLACEHOLDER"),
    ]
    root = write_folder(root, good | bad, captions)
    (root / "a-folder.jpg").mkdir()  # listed, exists, but cannot be read as a file
    with (root / "captions.csv").open("a", encoding="utf-8") as handle:
        handle.write("a-folder.jpg,a directory in disguise\n")
    text = (root / "captions.csv").read_bytes().replace(b"PLACEHOLDER", b"caf\xe9 au lait")
    (root / "captions.csv").write_bytes(text)
    return root


EXPECTED_REASONS = {
    "caption_not_utf8": 1,
    "empty_caption": 1,
    "empty_file": 1,
    "missing_caption": 1,
    "missing_image": 1,
    "not_an_image": 1,
    "truncated": 1,
    "too_small": 1,
    "unreadable": 1,
}


def run(source: Path, out: Path, workers: int = 1, per_shard: int = 3):
    return prepare_dataset(folder_records(source), out, LIMITS, per_shard, workers, progress=False)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("prep")
    source = mixed_folder(root / "source")
    return root / "out", run(source, root / "out")


def test_counts_add_up_and_every_reason_is_named(prepared):
    out, summary = prepared
    assert summary.inputs == summary.accepted + summary.rejected + summary.duplicates
    assert (summary.accepted, summary.duplicates) == (8, 1)  # 7 good + the lossy JPEG copy
    assert summary.rejected_by_reason == EXPECTED_REASONS
    assert summary.line() == "inputs 18 · accepted 8 · rejected 9 · duplicates 1"
    assert json.loads((out / "prepare_metrics.json").read_text())["inputs"] == 18


def test_every_input_not_taken_has_a_line_in_rejected_jsonl(prepared):
    out, summary = prepared
    rows = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert len(rows) == summary.rejected + summary.duplicates
    by_source = {row["source"]: row for row in rows}
    assert by_source["folder:copy.png"]["reason"] == "duplicate"
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert by_source["folder:copy.png"]["duplicate_of"] in set(manifest["key"])
    assert by_source["folder:uncaptioned.png"]["reason"] == "missing_caption"
    assert by_source["folder:a-folder.jpg"]["reason"] == "unreadable"
    assert all(row["detail"] for row in rows)


def test_shards_read_back_with_webdataset(prepared):
    out, _ = prepared
    manifest = pd.read_parquet(out / "manifest.parquet").set_index("key")
    shards = sorted(str(p) for p in (out / "shards").glob("*.tar"))
    assert len(shards) == 3  # 8 samples, 3 per shard
    seen = []
    for sample in wds.WebDataset(shards, shardshuffle=False, empty_check=False):
        key = sample["__key__"]
        row = manifest.loc[key]
        image_ext = "jpg" if "jpg" in sample else "png"
        pixels = Image.open(io.BytesIO(sample[image_ext]))
        assert pixels.mode == "RGB" and pixels.size == (row.width, row.height)
        assert hashlib.sha256(pixels.tobytes()).hexdigest() == row.sha256
        assert key == row.sha256[:20]  # content-derived key
        meta = json.loads(sample["json"])
        assert meta == {"caption": row.caption, "source": row.source}
        assert Path(sample["__url__"]).name == row.shard
        seen.append(key)
    assert seen == list(manifest.index)
    assert manifest.loc[manifest.source == "folder:photo.jpg"].shape[0] == 1


def test_plain_jpeg_is_stored_byte_for_byte(prepared):
    out, _ = prepared
    jpegs = {
        json.loads(s["json"])["source"]: s["jpg"]
        for s in wds.WebDataset(
            sorted(map(str, (out / "shards").glob("*.tar"))), shardshuffle=False
        )
        if "jpg" in s
    }
    assert set(jpegs) == {"folder:photo.jpg", "folder:copy.jpg"}
    for ref, stored in jpegs.items():
        assert stored == (out.parent / "source" / ref.removeprefix("folder:")).read_bytes()


def test_rerun_is_byte_identical_whatever_the_worker_count(prepared, tmp_path):
    out, _ = prepared
    again = run(mixed_folder(tmp_path / "source"), tmp_path / "out", workers=2)
    assert again.line() == "inputs 18 · accepted 8 · rejected 9 · duplicates 1"
    for name in [
        "manifest.parquet",
        "rejected.jsonl",
        *(f"shards/shard-{i:06d}.tar" for i in range(3)),
    ]:
        assert (tmp_path / "out" / name).read_bytes() == (out / name).read_bytes(), name


def test_rerun_into_a_used_folder_leaves_no_stale_shards(tmp_path):
    source = write_folder(
        tmp_path / "s",
        {f"{i}.png": image_bytes(noise_image(i)) for i in range(4)},
        [(f"{i}.png", "x") for i in range(4)],
    )
    run(source, tmp_path / "out", per_shard=1)
    (source / "captions.csv").write_text("file,caption\n0.png,x\n")
    (source / "1.png").unlink(), (source / "2.png").unlink(), (source / "3.png").unlink()
    summary = run(source, tmp_path / "out", per_shard=1)
    assert summary.shards == 1 and len(list((tmp_path / "out" / "shards").iterdir())) == 1


def test_pixels_survive_the_round_trip(prepared):
    out, _ = prepared
    manifest = pd.read_parquet(out / "manifest.parquet")
    row = manifest.loc[manifest.source == "folder:good3.png"].iloc[0]
    sample = next(
        s
        for s in wds.WebDataset(str(out / "shards" / row.shard), shardshuffle=False)
        if s["__key__"] == row.key
    )
    assert np.array_equal(
        np.asarray(Image.open(io.BytesIO(sample["png"]))), np.asarray(noise_image(3))
    )


def _exit_on_three(item: int) -> int:
    if item == 3:
        os._exit(1)  # what an out-of-memory kill looks like from the parent
    return item


def test_a_dying_worker_fails_the_run_instead_of_hanging():
    with pytest.raises(BrokenProcessPool):
        list(ordered_map(_exit_on_three, range(40), workers=2))


def long_folder(root: Path, count: int) -> Path:
    """`count` inputs: distinct pictures, with every 50th cut short and every 40th from the
    second half a repeat of an early one, so rejections and duplicates straddle any kill."""
    files, captions = {}, []
    for i in range(count):
        name = f"img{i:04d}.png"
        data = image_bytes(noise_image(100 + (i % 7 if i >= count // 2 and i % 40 == 0 else i)))
        files[name] = data[:200] if i % 50 == 25 else data
        captions.append((name, f"picture {i}"))
    return write_folder(root, files, captions)


KILLABLE = """
import sys
from pathlib import Path
from components.data.images import ImageLimits
from components.data.prepare import prepare_dataset
from components.data.sources import folder_records, source_identity
source, out = sys.argv[1], Path(sys.argv[2])
prepare_dataset(folder_records(Path(source)), out, ImageLimits(16, 1_000_000), 10, 2,
                progress=False, source=source_identity(source, "image", "caption", 0, 0))
"""


def test_killed_run_resumes_to_the_same_bytes(tmp_path):
    source = long_folder(tmp_path / "source", 1000)
    identity = source_identity(str(source), "image", "caption", 0, 0)

    def prepare(out: Path, workers: int):
        records = folder_records(source)
        return prepare_dataset(records, out, LIMITS, 10, workers, progress=False, source=identity)

    whole = prepare(tmp_path / "whole", workers=1)
    assert (whole.rejected, whole.duplicates) == (20, 12)

    out = tmp_path / "killed"
    run = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, str(source), str(out)], cwd=ROOT, start_new_session=True
    )
    fifth = out / "shards" / "shard-000005.tar"  # opened once five shards are committed
    deadline = time.monotonic() + 120
    while not fifth.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert run.poll() is None, "prepare finished (or failed) before it could be killed"
    os.killpg(run.pid, signal.SIGKILL)  # the run and its decoding workers, at once
    run.wait()
    assert (out / STATE).is_file() and not (out / "manifest.parquet").exists()

    kept = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.tar")}
    resumed = prepare(out, workers=1)
    assert resumed == whole
    assert not (out / STATE).exists()
    finished = {name for name in kept if name < fifth.name}
    assert len(finished) >= 5
    for name in finished:  # finished shards are kept, not written again
        assert (out / "shards" / name).stat().st_mtime_ns == kept[name], name
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(
        p.relative_to(tmp_path / "whole").as_posix()
        for p in (tmp_path / "whole").rglob("*")
        if p.is_file()
    )
    for name in written:
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


def test_a_changed_source_starts_over(tmp_path):
    source = long_folder(tmp_path / "source", 60)

    def prepare(out: Path, stop_after: int | None = None):
        identity = source_identity(str(source), "image", "caption", 0, 0)
        records = folder_records(source)
        if stop_after is not None:
            records = crash_after(records, stop_after)
        return prepare_dataset(records, out, LIMITS, 10, 1, progress=False, source=identity)

    def crash_after(records, count):
        for n, record in enumerate(records):
            if n == count:
                raise RuntimeError("the machine went away")
            yield record

    with pytest.raises(RuntimeError):
        prepare(tmp_path / "out", stop_after=35)
    assert (tmp_path / "out" / STATE).is_file()
    with (source / "captions.csv").open("a", encoding="utf-8") as handle:
        handle.write("img0000.png,the first picture again\n")  # one more input: a duplicate
    again = prepare(tmp_path / "out")
    assert (again.inputs, again.duplicates) == (61, 2)
    assert prepare(tmp_path / "fresh") == again
    for name in ("manifest.parquet", "rejected.jsonl", "shards/shard-000000.tar"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()

    (tmp_path / "fresh" / STATE).write_bytes(b"not a database")  # a leftover not to be trusted
    assert prepare(tmp_path / "fresh") == again

    with pytest.raises(RuntimeError):  # stopped again, and then a finished shard is lost
        prepare(tmp_path / "lost", stop_after=35)
    (tmp_path / "lost" / "shards" / "shard-000001.tar").unlink()
    assert prepare(tmp_path / "lost") == again
    assert (tmp_path / "lost" / "shards" / "shard-000001.tar").read_bytes() == (
        tmp_path / "fresh" / "shards" / "shard-000001.tar"
    ).read_bytes()
