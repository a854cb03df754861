"""Describing prepared shards, one part file per shard, named by what decides its contents.

A part's name holds a hash of the shard's manifest rows (key, pixel sha256, caption) and of the
describer's identity (backend, models, prompts, settings, seed). A rerun skips every shard whose
part exists; a run killed half-way resumes where it stopped, and since a part appears only by
an atomic rename, no shard is ever half-written, lost or written twice.

A sample whose image the shard does not give (a truncated or corrupt tar) or PIL cannot open is
rejected at stage "image" (reason unreadable_image) and logged; the rest of the shard goes on.
Its part keeps that rejection: after repairing the shard, delete the part to describe it again.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from components.data.shards import ShardImage, UnreadableImage, shard_images
from components.data.tables import parquet_rows
from components.describe.checking import Edit, Reason, Rejection, check_text, clean
from components.describe.describer import Describer, Outcome
from components.describe.errors import DescribeError

PART_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("shard", pa.string()),
        ("t_o", pa.string()),
        ("t_ins", pa.string()),
        ("t_e", pa.string()),
        ("t_o_source", pa.string()),  # "caption" (from the data) or "captioner" (the MLLM)
        ("backend", pa.string()),
        ("model", pa.string()),
        ("prompt_version", pa.string()),  # null for the template backend: it uses no prompt
        ("attempts", pa.int32()),  # answers the models gave for this sample, captions included
        ("status", pa.string()),
        ("stage", pa.string()),  # rejected samples: "image", "caption" or "edit"
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("answer", pa.string()),  # rejected samples: the last raw answer, cut to MAX_ANSWER
    ]
)
CAPTION_CHUNK = 256  # images decoded at a time: a 10,000-sample shard never sits in memory
MAX_ANSWER = 1000
log = logging.getLogger(__name__)


class Status(StrEnum):
    OK = "ok"  # t_o, t_ins and t_e written and checked
    REJECTED = "rejected"  # see stage, reason and detail


@dataclass(frozen=True)
class ShardWork:
    """One shard to describe: its first `samples` manifest rows, into the part file `part`."""

    shard: str  # file name in DATA/shards
    samples: int  # all of its rows, unless --limit cuts the shard
    part: str  # "<shard stem>-<cache key>.parquet" in OUT/parts


@dataclass(frozen=True)
class ShardResult:
    shard: str
    samples: int
    reused: bool  # its part existed: nothing was generated


def plan_shards(
    manifest: Path, identity: dict[str, object], limit: int | None = None
) -> list[ShardWork]:
    """The shards of `manifest` in its order, the first `limit` samples only if given."""
    if not manifest.is_file():
        raise DescribeError(
            f"{manifest}: no manifest; run `regionedit prepare` first, or point --data at the "
            "folder it wrote"
        )
    digests: dict[str, Any] = {}  # shard -> running sha256 of its rows
    counts: dict[str, int] = {}
    for key, shard, sha256, caption in itertools.islice(_manifest_rows(manifest), limit):
        digests.setdefault(shard, hashlib.sha256()).update(f"{key}\t{sha256}\t{caption}\n".encode())
        counts[shard] = counts.get(shard, 0) + 1
    settings = json.dumps(identity, sort_keys=True).encode()
    return [
        ShardWork(
            shard,
            counts[shard],
            f"{Path(shard).stem}-{hashlib.sha256(digest.digest() + settings).hexdigest()[:16]}"
            ".parquet",
        )
        for shard, digest in digests.items()
    ]


def describe_shard(work: ShardWork, data: Path, parts: Path, describer: Describer) -> ShardResult:
    """Describe one shard into its part file, unless that part exists already."""
    part = parts / work.part
    if part.is_file():
        return ShardResult(work.shard, work.samples, reused=True)
    keys, captions = _shard_rows(data / "manifest.parquet", work)
    shard = data / "shards" / work.shard
    unreadable = _unreadable_images(shard, keys, decode=describer.can_caption)
    t_o, attempts, failed, captioned = _original_descriptions(
        shard, keys, captions, describer, unreadable
    )
    ready = [i for i in range(len(keys)) if t_o[i] is not None]
    edits: dict[int, Edit] = {}
    for i, outcome in zip(ready, describer.edits([t_o[i] for i in ready]), strict=True):
        attempts[i] += outcome.attempts
        if outcome.value is None:
            failed[i] = ("edit", outcome)
        else:
            edits[i] = outcome.value
    rows = [
        {
            "key": key,
            "shard": work.shard,
            "t_o": t_o[i],
            "t_o_source": "captioner" if i in captioned else "caption",
            "attempts": attempts[i],
            **_identity_columns(describer),
            **_result_columns(edits.get(i), failed.get(i)),
        }
        for i, key in enumerate(keys)
    ]
    parts.mkdir(parents=True, exist_ok=True)
    _write_atomically(pa.Table.from_pylist(rows, schema=PART_SCHEMA), part)
    return ShardResult(work.shard, work.samples, reused=False)


def _unreadable_images(
    shard: Path, keys: list[str], decode: bool
) -> dict[int, tuple[str, Outcome]]:
    """The samples whose image the shard does not give or PIL cannot open and verify (cheap:
    no decoding), or with `decode` (a captioner will need the pixels) cannot decode; logged."""
    if not shard.is_file():
        raise DescribeError(f"{shard}: missing shard; rerun `regionedit prepare`")
    index = {key: i for i, key in enumerate(keys)}
    unreadable: dict[int, tuple[str, Outcome]] = {}
    for image in shard_images(shard, keys):
        if problem := _image_problem(image, decode):
            detail = f"{shard.name}: sample {image.key}: {problem}"
            log.warning("%s; rejected as %s", detail, Reason.UNREADABLE_IMAGE)
            rejection = Rejection(Reason.UNREADABLE_IMAGE, detail)
            unreadable[index[image.key]] = ("image", Outcome(None, 0, rejection))
    return unreadable


def _image_problem(image: ShardImage, decode: bool) -> str | None:
    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            if decode:
                opened.load()
            else:
                opened.verify()
    except UnreadableImage as err:
        return str(err)
    except Exception as err:  # PIL's errors for corrupt bytes vary in type
        return f"not a readable image ({type(err).__name__}: {err})"
    return None


def _original_descriptions(
    shard: Path,
    keys: list[str],
    captions: list[str],
    describer: Describer,
    unreadable: dict[int, tuple[str, Outcome]],
) -> tuple[list[str | None], list[int], dict[int, tuple[str, Outcome]], set[int]]:
    """t_o per readable sample: its caption, or the MLLM's where the caption is unusable or
    describe.recaption is set; also answers used, failures and which were captioned."""
    t_o: list[str | None] = [None if i in unreadable else clean(c) for i, c in enumerate(captions)]
    attempts = [0] * len(keys)
    failed = dict(unreadable)
    problems = {
        i: check_text("caption", c, describer.bounds) for i, c in enumerate(t_o) if c is not None
    }
    to_caption = [i for i, problem in problems.items() if problem or describer.cfg.recaption]
    if to_caption and describer.can_caption:
        for i, outcome in _captions(shard, [keys[i] for i in to_caption], to_caption, describer):
            t_o[i], attempts[i] = outcome.value, outcome.attempts
            if outcome.value is None:
                failed[i] = ("caption", outcome)
    else:
        cannot = f"and the {describer.backend.name} backend cannot caption images"
        for i in to_caption:
            rejection = Rejection(Reason.NO_CAPTION, f"{problems[i].detail}, {cannot}")
            t_o[i], failed[i] = None, ("caption", Outcome(None, 0, rejection))
    return t_o, attempts, failed, set(to_caption)


def _identity_columns(describer: Describer) -> dict[str, str | None]:
    prompts = describer.backend.prompts
    return {
        "backend": describer.backend.name,
        "model": describer.backend.model,
        "prompt_version": prompts.version if prompts else None,
    }


def _result_columns(edit: Edit | None, failure: tuple[str, Outcome] | None) -> dict[str, object]:
    if failure is None:
        return {"t_ins": edit.instruction, "t_e": edit.target, "status": Status.OK.value}
    stage, outcome = failure
    return {
        "status": Status.REJECTED.value,
        "stage": stage,
        "reason": str(outcome.rejection.reason),
        "detail": outcome.rejection.detail,
        "answer": outcome.answer[:MAX_ANSWER],
    }


def _captions(
    shard: Path, keys: list[str], indices: list[int], describer: Describer
) -> Iterator[tuple[int, Outcome[str]]]:
    """t_o by the MLLM for the samples at `indices` (whose keys are `keys`), CAPTION_CHUNK
    images at a time."""
    images = _images(shard, keys)
    for start in range(0, len(indices), CAPTION_CHUNK):
        chunk = indices[start : start + CAPTION_CHUNK]
        outcomes = describer.captions(list(itertools.islice(images, len(chunk))))
        yield from zip(chunk, outcomes, strict=True)


def _images(shard: Path, keys: list[str]) -> Iterator[Image.Image]:
    """The images of `keys` (all checked readable), in shard order (which is theirs), decoded
    one at a time."""
    for image in shard_images(shard, keys):
        try:
            data = image.data
        except UnreadableImage as err:
            raise DescribeError(
                f"{shard}: sample {image.key}: {err}, though it was readable when its shard was "
                "checked: the shard changed during the run; run describe again"
            ) from err
        with Image.open(io.BytesIO(data)) as opened:
            yield opened.convert("RGB")


def _manifest_rows(manifest: Path) -> Iterator[tuple[str, str, str, str]]:
    return parquet_rows(manifest, ["key", "shard", "sha256", "caption"])


def _shard_rows(manifest: Path, work: ShardWork) -> tuple[list[str], list[str]]:
    """Keys and captions of the shard's first `samples` manifest rows, in manifest order."""
    rows = pq.read_table(manifest, columns=["key", "caption"], filters=[("shard", "=", work.shard)])
    rows = rows.slice(0, work.samples)
    if rows.num_rows != work.samples:
        raise DescribeError(
            f"{manifest}: {work.shard} has {rows.num_rows} rows, expected {work.samples}: the "
            "manifest changed during the run; run describe again"
        )
    return rows.column("key").to_pylist(), rows.column("caption").to_pylist()


def _write_atomically(table: pa.Table, path: Path) -> None:
    """Write beside `path`, then rename: a reader sees the whole part or none of it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, path)
