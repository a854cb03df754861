"""Each source kind yields the same samples: folder (csv/jsonl), WebDataset tars, parquet, demo."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.config import PrepareConfig
from components.data.images import ImageLimits
from components.data.prepare import prepare_dataset
from components.data.sources import SourceError, open_source, source_kind
from tests.conftest import LIMITS, image_bytes, noise_image, write_folder

IMAGES = {f"img{i}.png": image_bytes(noise_image(i)) for i in range(3)}
CAPTIONS = {name: f"picture number {i}" for i, name in enumerate(IMAGES)}


def prepare(source: str, out: Path, image_column="image", caption_column="caption"):
    records = open_source(source, image_column, caption_column, demo_scenes=0, seed=0)
    summary = prepare_dataset(records, out, LIMITS, 10, 1, progress=False)
    return summary, pd.read_parquet(out / "manifest.parquet")


def expected_keys(tmp_path: Path) -> list[str]:
    """Keys of the three images, prepared from a plain captioned folder."""
    _, manifest = prepare(
        str(write_folder(tmp_path / "ref", IMAGES, list(CAPTIONS.items()))), tmp_path / "ref-out"
    )
    return list(manifest["key"])


def test_folder_with_captions_jsonl(tmp_path):
    root = tmp_path / "jsonl"
    root.mkdir()
    for name, payload in IMAGES.items():
        (root / name).write_bytes(payload)
    lines = [json.dumps({"file": f, "caption": c}) for f, c in CAPTIONS.items()]
    (root / "captions.jsonl").write_text("\n".join([*lines, "{not json"]) + "\n")
    assert source_kind(str(root)) == "folder"
    summary, manifest = prepare(str(root), tmp_path / "out")
    assert list(manifest["key"]) == expected_keys(tmp_path)
    assert list(manifest["caption"]) == list(CAPTIONS.values())
    assert summary.rejected_by_reason == {"missing_image": 1}  # the malformed line, reported


def test_webdataset_tars_with_txt_or_json_captions(tmp_path):
    shards = tmp_path / "wds"
    shards.mkdir()
    with tarfile.open(shards / "00000.tar", "w") as tar:
        for i, (name, payload) in enumerate(IMAGES.items()):
            caption = CAPTIONS[name].encode()
            # img2dataset writes KEY.json with the caption in it; others write KEY.txt
            members = (
                {"jpg": payload, "txt": caption}
                if i % 2
                else {
                    "jpg": payload,
                    "json": json.dumps({"caption": CAPTIONS[name], "url": "x"}).encode(),
                }
            )
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{i:09d}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("000000099.txt")  # a caption whose image never arrived
        info.size = 3
        tar.addfile(info, io.BytesIO(b"cat"))
    assert source_kind(str(shards)) == "webdataset"
    summary, manifest = prepare(str(shards), tmp_path / "out")
    assert list(manifest["key"]) == expected_keys(tmp_path)
    assert list(manifest["caption"]) == list(CAPTIONS.values())
    assert manifest["source"][0] == "webdataset:00000.tar/000000000"
    assert summary.rejected_by_reason == {"missing_image": 1}


def test_truncated_tar_keeps_what_was_readable_and_reports_the_rest(tmp_path):
    shards = tmp_path / "wds"
    shards.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i, payload in enumerate(IMAGES.values()):
            for ext, data in (("png", payload), ("txt", b"caption")):
                info = tarfile.TarInfo(f"{i}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    (shards / "broken.tar").write_bytes(buffer.getvalue()[: len(IMAGES["img2.png"]) + 3000])
    summary, _ = prepare(str(shards), tmp_path / "out")
    assert summary.accepted >= 1 and summary.rejected_by_reason.get("unreadable") == 1
    assert summary.inputs == summary.accepted + summary.rejected + summary.duplicates


@pytest.mark.parametrize("layout", ["hf_struct", "raw_bytes"])
def test_parquet_with_named_columns(tmp_path, layout):
    cells = [{"bytes": b, "path": n} if layout == "hf_struct" else b for n, b in IMAGES.items()]
    table = pa.table({"jpg": cells, "text": list(CAPTIONS.values())})
    folder = tmp_path / "pq"
    folder.mkdir()
    pq.write_table(table.slice(0, 2), folder / "part-0.parquet")
    pq.write_table(table.slice(2), folder / "part-1.parquet")
    assert source_kind(str(folder)) == "parquet"
    summary, manifest = prepare(str(folder), tmp_path / "out", "jpg", "text")
    assert list(manifest["key"]) == expected_keys(tmp_path)
    assert list(manifest["source"]) == [
        "parquet:part-0.parquet#0",
        "parquet:part-0.parquet#1",
        "parquet:part-1.parquet#0",
    ]


def test_parquet_missing_column_names_the_file_and_column(tmp_path):
    pq.write_table(pa.table({"image": [b"x"], "text": ["y"]}), tmp_path / "data.parquet")
    with pytest.raises(SourceError, match=r"data\.parquet: no column 'caption'.*caption_column"):
        prepare(str(tmp_path / "data.parquet"), tmp_path / "out")


def test_unknown_source_says_what_it_expected(tmp_path):
    with pytest.raises(SourceError, match="captions.csv"):
        source_kind(str(tmp_path))


def test_demo_has_the_photographs_and_seeded_scenes(tmp_path):
    records = list(open_source("demo", "image", "caption", demo_scenes=4, seed=0))
    refs = [r.ref for r in records]
    assert {
        "demo:astronaut.png",
        "demo:chelsea.png",
        "demo:coffee.png",
        "demo:rocket.jpg",
        "demo:horse.png",
        "demo:hubble_deep_field.jpg",
        "demo:motorcycle_left.png",
    } <= set(refs)
    assert refs[-4:] == [f"demo:scene-{i:05d}" for i in range(4)]
    again = list(open_source("demo", "image", "caption", demo_scenes=4, seed=0))
    other = list(open_source("demo", "image", "caption", demo_scenes=4, seed=1))
    assert [r.data for r in records[-4:]] == [r.data for r in again[-4:]]
    assert [r.data for r in records[-4:]] != [r.data for r in other[-4:]]
    defaults = PrepareConfig()
    limits = ImageLimits(defaults.min_side, defaults.max_pixels)
    summary = prepare_dataset(iter(records), tmp_path / "out", limits, 50, 1, progress=False)
    assert summary.accepted == len(records) and summary.rejected == 0
