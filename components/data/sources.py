"""Stream SourceRecords out of the five source kinds `prepare` accepts, without loading them."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tarfile
from array import array
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from components.config import WorldConfig
from components.data.records import Reason, SourceRecord
from components.data.tables import parquet_batches
from components.errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
CAPTION_FILES = ("captions.csv", "captions.jsonl")


class SourceError(InputError):
    """The source as a whole is unusable (wrong path, missing column): fix it and rerun."""


def source_kind(source: str) -> str:
    """Which reader a `--source` value needs: demo, world, folder, webdataset or parquet."""
    if source in ("demo", "world"):
        return source
    path = Path(source)
    if path.is_file() and path.suffix in (".tar", ".parquet"):
        return "webdataset" if path.suffix == ".tar" else "parquet"
    if path.is_dir():
        if any((path / name).is_file() for name in CAPTION_FILES):
            return "folder"
        if any(path.glob("*.tar")):
            return "webdataset"
        if any(path.glob("*.parquet")):
            return "parquet"
    raise SourceError(
        f"--source {source!r}: not 'demo' or 'world', and not a folder holding captions.csv/"
        "captions.jsonl, *.tar WebDataset shards or *.parquet files (nor a single .tar or "
        ".parquet file)"
    )


def folder_records(root: Path) -> Iterator[SourceRecord]:
    """Images in a folder, captioned by captions.csv (file,caption) or captions.jsonl; then the
    images nobody captioned, reported rather than skipped."""
    present = [name for name in CAPTION_FILES if (root / name).is_file()]
    if len(present) != 1:
        raise SourceError(f"{root}: needs exactly one of {CAPTION_FILES}, found {present}")
    listed = array("Q")  # 8 bytes per captioned file: memory stays small at millions of inputs
    rows = _csv_rows if present[0].endswith(".csv") else _jsonl_rows
    for line, file, caption in rows(root / present[0]):
        where = f"folder:{present[0]}:{line}"
        if file is None:
            yield SourceRecord(where, caption, error=(Reason.MISSING_IMAGE, "no 'file' value"))
            continue
        listed.append(_name_hash(file))
        yield SourceRecord(f"folder:{file}", caption, path=str(root / file))
    captioned = np.unique(np.frombuffer(listed, dtype=np.uint64))
    del listed
    uncaptioned = [
        relative
        for relative in _image_files(root, root)
        if not _holds(captioned, _name_hash(relative))
    ]
    for relative in sorted(uncaptioned):
        yield SourceRecord(f"folder:{relative}", None, path=str(root / relative))


def _name_hash(relative: str) -> int:
    # 64 bits: two of a million names collide with odds of about 3e-8
    return int.from_bytes(
        hashlib.blake2b(relative.encode(errors="surrogateescape"), digest_size=8).digest()
    )


def _holds(sorted_hashes: np.ndarray, value: int) -> bool:
    at = int(np.searchsorted(sorted_hashes, np.uint64(value)))
    return at < len(sorted_hashes) and int(sorted_hashes[at]) == value


def _image_files(folder: Path, root: Path) -> Iterator[str]:
    """Image files under `folder` as paths relative to `root`, streamed (a folder of a million
    files is never listed whole)."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from _image_files(Path(entry.path), root)
            elif Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                yield Path(entry.path).relative_to(root).as_posix()


def _csv_rows(path: Path) -> Iterator[tuple[int, str | None, str | None]]:
    # surrogateescape keeps invalid UTF-8 bytes, so that one bad caption is rejected, not the file
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"file", "caption"} - set(reader.fieldnames or ())
        if missing:
            raise SourceError(f"{path}: header must be 'file,caption'; missing {sorted(missing)}")
        for row in reader:
            yield reader.line_num, row["file"] or None, row["caption"]


def _jsonl_rows(path: Path) -> Iterator[tuple[int, str | None, str | None]]:
    with path.open(encoding="utf-8", errors="surrogateescape") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if not isinstance(row, dict):
                yield number, None, None
                continue
            yield number, row.get("file") or None, row.get("caption")


def source_files(source: Path, suffix: str) -> list[Path]:
    """A source given as one file, or the `suffix` files of its folder in name order."""
    return [source] if source.is_file() else sorted(source.glob(f"*{suffix}"))


def webdataset_records(source: Path) -> Iterator[SourceRecord]:
    """Samples of existing tar shards (img2dataset layout: KEY.jpg + KEY.txt and/or KEY.json)."""
    for shard in source_files(source, ".tar"):
        try:
            with tarfile.open(shard, mode="r|*") as tar:
                yield from _tar_samples(shard.name, tar)
        except (tarfile.TarError, OSError) as err:
            yield SourceRecord(
                f"webdataset:{shard.name}",
                None,
                error=(Reason.UNREADABLE, f"shard stops being readable here: {err}"),
            )


def _tar_samples(shard: str, tar: tarfile.TarFile) -> Iterator[SourceRecord]:
    key, files = None, {}
    for member in tar:
        if not member.isfile():
            continue
        stem, _, ext = member.name.partition(".")  # WebDataset: the key ends at the first dot
        if stem != key and key is not None:
            yield _tar_sample(shard, key, files)
            files = {}
        key = stem
        files[ext.lower()] = tar.extractfile(member).read()
    if key is not None:
        yield _tar_sample(shard, key, files)


def _tar_sample(shard: str, key: str, files: dict[str, bytes]) -> SourceRecord:
    ref = f"webdataset:{shard}/{key}"
    caption = files.get("txt")
    if caption is None and "json" in files:
        try:
            caption = json.loads(files["json"]).get("caption")
        except (ValueError, AttributeError):
            caption = None
    image = next((files[e] for e in files if "." + e.split(".")[-1] in IMAGE_EXTENSIONS), None)
    if image is None:
        return SourceRecord(ref, caption, error=(Reason.MISSING_IMAGE, f"members: {sorted(files)}"))
    return SourceRecord(ref, caption, data=image)


def parquet_records(
    source: Path, image_column: str, caption_column: str, batch_rows: int = 64
) -> Iterator[SourceRecord]:
    """Rows of parquet files; images as HF {bytes, path} structs or raw bytes."""
    for file in source_files(source, ".parquet"):
        parquet = pq.ParquetFile(file)
        names = parquet.schema_arrow.names
        for column, option in ((image_column, "image_column"), (caption_column, "caption_column")):
            if column not in names:
                raise SourceError(
                    f"{file}: no column {column!r} (prepare.{option}); columns are {names}"
                )
        row = 0
        for batch in parquet_batches(file, [image_column, caption_column], batch_rows):
            for image, caption in zip(
                batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True
            ):
                yield _parquet_record(file, row, image, caption)
                row += 1


def _parquet_record(file: Path, row: int, image: object, caption: str | None) -> SourceRecord:
    ref = f"parquet:{file.name}#{row}"
    if isinstance(image, dict):  # the Hugging Face datasets Image feature
        if image.get("bytes") is not None:
            return SourceRecord(ref, caption, data=image["bytes"])
        if image.get("path"):
            return SourceRecord(ref, caption, path=str(file.parent / image["path"]))
        image = None
    if isinstance(image, bytes):
        return SourceRecord(ref, caption, data=image)
    return SourceRecord(ref, caption, error=(Reason.MISSING_IMAGE, "image cell is empty"))


def source_identity(
    source: str,
    image_column: str,
    caption_column: str,
    demo_scenes: int,
    seed: int,
    world: WorldConfig | None = None,
) -> dict[str, object]:
    """What decides the records `open_source` yields with the same arguments: the settings its
    reader uses and, for files, the name, size and modification time of the files that list the
    inputs (a folder's caption file, the tars, the parquet files). `prepare` resumes a killed
    run only when this is unchanged."""
    kind = source_kind(source)
    if kind == "demo":
        return {"kind": kind, "scenes": demo_scenes, "seed": seed}
    if kind == "world":
        world = world or WorldConfig()
        return {"kind": kind, "scenes": world.scenes, "side": world.side, "seed": seed}
    path = Path(source)
    listing = {
        "folder": [path / name for name in CAPTION_FILES],
        "webdataset": source_files(path, ".tar"),
        "parquet": source_files(path, ".parquet"),
    }[kind]
    files = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in listing if f.is_file()]
    identity = {"kind": kind, "path": str(path.resolve()), "files": files}
    if kind == "parquet":
        identity |= {"image_column": image_column, "caption_column": caption_column}
    return identity


def open_source(
    source: str,
    image_column: str,
    caption_column: str,
    demo_scenes: int,
    seed: int,
    world: WorldConfig | None = None,
) -> Iterator[SourceRecord]:
    """Records of any source kind; see `source_kind` for how `source` is recognised. `world`
    draws `world.scenes` scenes `world.side` pixels square (None: the default WorldConfig):
    their pictures and captions only."""
    kind = source_kind(source)
    if kind == "demo":
        from components.data.demo import demo_records

        return demo_records(demo_scenes, seed)
    if kind == "world":
        from components.data.world_source import training_records

        world = world or WorldConfig()
        return training_records(world.scenes, seed, world.side)
    if kind == "folder":
        return folder_records(Path(source))
    if kind == "webdataset":
        return webdataset_records(Path(source))
    return parquet_records(Path(source), image_column, caption_column)
