"""Loaders for the two benchmarks in their published formats, from local paths only.

Emu Edit: the Hugging Face parquet files of `facebook/emu_edit_test_set`. MagicBrush: the
official test zip unzipped (`test/edit_sessions.json` + `test/images/<img_id>/…`, and the
description files `test/local_descriptions.json` / `test/global_descriptions.json`, each
`{img_id: {"<img_id>-output<k>.png": text, …}}`), or the Hugging Face `osunlp/MagicBrush`
parquet of its dev split (which ships no descriptions: CLIP-T stays blank). Images stay encoded
(a parquet cell's bytes, or a file path) until a case is scored, so a whole benchmark fits in
memory.

A wrong path or a missing column or file fails at once with a BenchmarkError that names it;
an image that cannot be decoded raises BenchmarkError when it is opened, so a runner can report
that one case and go on.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from components.data.images import to_rgb
from components.data.tables import parquet_batches
from components.errors import InputError

EMU_EDIT_COLUMNS = (
    "idx",
    "image",
    "instruction",
    "task",
    "split",
    "input_caption",
    "output_caption",
)
EMU_EDIT_WORLD_COLUMNS = ("distractor", "mask", "target")  # read where a set has them
MAGICBRUSH_COLUMNS = ("img_id", "turn_index", "source_img", "mask_img", "instruction", "target_img")
IMAGE_COLUMNS = ("source_img", "target_img", "mask_img")  # in MagicBrushTurn's field order
SESSION_KEYS = ("input", "output", "mask", "instruction")
SESSIONS_FILE = "edit_sessions.json"
DESCRIPTION_FILES = {"local": "local_descriptions.json", "global": "global_descriptions.json"}
BATCH_ROWS = 32  # parquet rows decoded at a time: images dominate, so keep it small


class BenchmarkError(InputError):
    """A benchmark path, file, column or image is missing or unreadable; the message names it."""


@dataclass(frozen=True)
class StoredImage:
    """One benchmark image, kept encoded until opened: a parquet cell's bytes or a file."""

    origin: str  # names the image in errors: "<file>#<row>:<column>" or the file's path
    data: bytes | None = None
    path: Path | None = None

    def open(self, mode: str = "RGB") -> Image.Image:
        """Decode it to `mode` ("RGB" composites transparency on white), on every call."""
        if self.data is None and self.path is None:
            raise BenchmarkError(f"{self.origin}: the image cell is empty")
        try:
            image = Image.open(io.BytesIO(self.data) if self.data is not None else self.path)
            image.load()
        except (OSError, SyntaxError, ValueError) as err:
            raise BenchmarkError(f"{self.origin}: not a readable image ({err})") from None
        return to_rgb(image) if mode == "RGB" else image.convert(mode)


@dataclass(frozen=True)
class EmuEditCase:
    """One row of the Emu Edit test set; `image` decodes the input picture on each access."""

    id: str  # the row's `idx`
    source: StoredImage
    instruction: str
    task: str
    input_caption: str
    output_caption: str
    # what the world's test sets add (components/world): absent from the published set
    distractor: bool | None = None  # another object shares the edited one's colour or shape
    mask: StoredImage | None = None  # the ground-truth edit region, white = edited
    target: StoredImage | None = None  # the rendered ground-truth output

    @property
    def image(self) -> Image.Image:
        return self.source.open("RGB")


@dataclass(frozen=True)
class MagicBrushTurn:
    """One edit of a session: the ground-truth input, instruction, ground-truth output and mask.

    The input of turn k > 1 is turn k-1's ground-truth output (the benchmark's own chaining).
    """

    turn: int  # 1, 2, …
    instruction: str
    source: StoredImage
    target: StoredImage
    mask: StoredImage
    caption: str | None = None  # the ground truth's description (CLIP-T), where the set has one
    # what the world's test sets add to a turn's entry (components/world)
    kind: str | None = None  # recolour, remove or reshape
    distractor: bool | None = None  # another object shares the edited one's colour or shape
    input_caption: str | None = None  # the input's global description, where the set has one

    @property
    def input_image(self) -> Image.Image:
        return self.source.open("RGB")

    @property
    def target_image(self) -> Image.Image:
        return self.target.open("RGB")

    @property
    def mask_image(self) -> Image.Image:
        return self.mask.open("L")


@dataclass(frozen=True)
class MagicBrushSession:
    id: str  # the image id, `img_id`
    turns: tuple[MagicBrushTurn, ...]


def load_emu_edit(path: Path, split: str = "test", limit: int | None = None) -> list[EmuEditCase]:
    """The rows of `split` in file order (at most `limit`), from a parquet file or a folder of
    them (searched recursively, so the dataset's own folder works); other splits are skipped.
    Rows are streamed BATCH_ROWS at a time and only the kept rows' image bytes stay in memory."""
    return list(_emu_edit_cases(path, split, limit))


def _emu_edit_cases(path: Path, split: str, limit: int | None) -> Iterator[EmuEditCase]:
    files = _parquet_files(path, "Emu Edit test set")
    columns = {}
    for file in files:
        names = _require_columns(file, EMU_EDIT_COLUMNS, "Emu Edit test set")
        columns[file] = EMU_EDIT_COLUMNS + tuple(c for c in EMU_EDIT_WORLD_COLUMNS if c in names)
    found, splits = 0, set()
    for file in files:
        for row, record in _parquet_rows(file, columns[file]):
            splits.add(record["split"])
            if record["split"] != split:
                continue
            if limit is not None and found >= limit:
                return
            found += 1
            images = {
                c: _cell_image(file, row, c, record[c]) for c in ("mask", "target") if c in record
            }
            yield EmuEditCase(
                id=str(record["idx"]),
                source=_cell_image(file, row, "image", record["image"]),
                instruction=record["instruction"],
                task=record["task"],
                input_caption=record["input_caption"],
                output_caption=record["output_caption"],
                distractor=record.get("distractor"),
                **images,
            )
    if not found and limit != 0:
        raise BenchmarkError(
            f"{path}: no rows of split {split!r}; the splits present are {sorted(splits)}"
        )


def load_magicbrush(
    path: Path, limit: int | None = None, captions: str = "local"
) -> list[MagicBrushSession]:
    """Sessions sorted by image id (the first `limit` of them), turns in order.

    `path` is the unzipped official test set (the folder holding `test/`, or `test/` itself) or
    the Hugging Face parquet of the split to evaluate (a file, or a folder of its shards).
    `captions` picks the description file CLIP-T reads ("local" or "global"); a turn its file
    does not describe, or a set without that file, has no caption.
    """
    if captions not in DESCRIPTION_FILES:
        raise BenchmarkError(f"captions must be one of {list(DESCRIPTION_FILES)}, not {captions!r}")
    sessions_file = next(
        (f for f in (path / SESSIONS_FILE, path / "test" / SESSIONS_FILE) if f.is_file()), None
    )
    if sessions_file is not None:
        folder = sessions_file.parent
        descriptions = _descriptions(folder / DESCRIPTION_FILES[captions])
        inputs = _descriptions(folder / DESCRIPTION_FILES["global"])
        return _official_sessions(sessions_file, limit, descriptions, inputs)
    if (path.is_file() and path.suffix == ".parquet") or (
        path.is_dir() and any(path.rglob("*.parquet"))
    ):
        return _parquet_sessions(path, limit)
    raise BenchmarkError(
        f"{path}: not a MagicBrush test set. Expected the unzipped official test set "
        f"({path / 'test' / SESSIONS_FILE} or {path / SESSIONS_FILE}, with images/<img_id>/ next "
        "to it), or the Hugging Face osunlp/MagicBrush parquet file(s)."
    )


def _descriptions(file: Path) -> dict[str, dict[str, str]]:
    """`{img_id: {image file name: description}}`; empty when the set has no such file."""
    if not file.is_file():
        return {}
    try:
        descriptions = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BenchmarkError(f"{file}: not readable JSON ({err})") from None
    if not isinstance(descriptions, dict) or not all(
        isinstance(v, dict) for v in descriptions.values()
    ):
        raise BenchmarkError(f"{file}: expected {{img_id: {{image file: description}}}}")
    return descriptions


def _official_sessions(
    sessions_file: Path,
    limit: int | None,
    descriptions: dict[str, dict[str, str]],
    inputs: dict[str, dict[str, str]],
) -> list[MagicBrushSession]:
    try:
        sessions = json.loads(sessions_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BenchmarkError(f"{sessions_file}: not readable JSON ({err})") from None
    if not isinstance(sessions, dict):
        raise BenchmarkError(f"{sessions_file}: expected an object {{img_id: [turn, …]}}")
    images = sessions_file.parent / "images"
    loaded = []
    for img_id in sorted(sessions)[:limit]:
        turns = []
        for number, entry in enumerate(sessions[img_id], start=1):
            where = f"{sessions_file}: session {img_id!r}, turn {number}"
            fields = entry if isinstance(entry, dict) else {}
            missing = [k for k in SESSION_KEYS if not isinstance(fields.get(k), str)]
            if missing:
                raise BenchmarkError(f"{where}: no {', '.join(missing)} (keys: {SESSION_KEYS})")
            files = {k: images / img_id / entry[k] for k in ("input", "output", "mask")}
            for file in files.values():
                if not file.is_file():
                    raise BenchmarkError(f"{where}: no such image file {file}")
            source, target, mask = (StoredImage(str(f), path=f) for f in files.values())
            caption = descriptions.get(img_id, {}).get(entry["output"])
            turns.append(
                MagicBrushTurn(
                    number,
                    entry["instruction"],
                    source,
                    target,
                    mask,
                    caption,
                    entry.get("kind"),
                    entry.get("distractor"),
                    inputs.get(img_id, {}).get(entry["input"]),
                )
            )
        loaded.append(MagicBrushSession(img_id, tuple(turns)))
    return loaded


def _parquet_sessions(path: Path, limit: int | None) -> list[MagicBrushSession]:
    files = _parquet_files(path, "MagicBrush parquet")
    training = [f.name for f in files if f.name.startswith("train")]
    if training:
        raise BenchmarkError(
            f"{path}: holds training shards ({', '.join(training)}); point at the split to "
            "evaluate (the dev-*.parquet file), never at the training data"
        )
    for file in files:
        _require_columns(file, MAGICBRUSH_COLUMNS, "MagicBrush parquet")
    # a first pass over the ids alone picks the sessions, so unwanted images are never kept
    ids = {i for f in files for i in pq.read_table(f, columns=["img_id"])["img_id"].to_pylist()}
    chosen = sorted(ids)[:limit]
    turns: dict[str, list[tuple[int, str, StoredImage, StoredImage, StoredImage]]] = {
        img_id: [] for img_id in chosen
    }
    for file in files:
        for row, record in _parquet_rows(file, MAGICBRUSH_COLUMNS):
            if record["img_id"] in turns:
                images = (_cell_image(file, row, c, record[c]) for c in IMAGE_COLUMNS)
                turns[record["img_id"]].append(
                    (record["turn_index"], record["instruction"], *images)
                )
    return [
        MagicBrushSession(
            img_id,
            tuple(
                MagicBrushTurn(number, *turn[1:])
                for number, turn in enumerate(sorted(turns[img_id], key=lambda t: t[0]), start=1)
            ),
        )
        for img_id in chosen
    ]


def _parquet_files(path: Path, what: str) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else []
    if not files:
        raise BenchmarkError(f"{path}: no {what} here (no such .parquet file, or a folder of them)")
    return files


def _require_columns(file: Path, columns: tuple[str, ...], what: str) -> list[str]:
    """The file's column names, once the ones `columns` names are known to be there."""
    try:
        names = pq.ParquetFile(file).schema_arrow.names
    except Exception as err:  # pyarrow raises several types for a file that is not parquet
        raise BenchmarkError(f"{file}: not a readable parquet file ({err})") from None
    missing = [c for c in columns if c not in names]
    if missing:
        raise BenchmarkError(
            f"{file}: no column {', '.join(map(repr, missing))}, which the {what} has; "
            f"columns are {names}"
        )
    return names


def _parquet_rows(file: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    row = 0
    for batch in parquet_batches(file, list(columns), BATCH_ROWS):
        for record in batch.to_pylist():
            yield row, record
            row += 1


def _cell_image(file: Path, row: int, column: str, cell: object) -> StoredImage:
    """A Hugging Face Image cell ({bytes, path}) or raw bytes; a bare path is relative to `file`."""
    origin = f"{file}#{row}:{column}"
    if isinstance(cell, dict):
        if cell.get("bytes") is not None:
            return StoredImage(origin, data=cell["bytes"])
        if cell.get("path"):
            return StoredImage(origin, path=file.parent / cell["path"])
    if isinstance(cell, bytes):
        return StoredImage(origin, data=cell)
    return StoredImage(origin)
