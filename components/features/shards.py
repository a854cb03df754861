"""The `features` stage's work: the frozen features of every described sample, per shard.

Each prepared shard gets one file (components/features/store.py) whose name holds a hash of what
decides its contents: the shard's manifest rows (key, pixel sha256), their descriptions, and the
cache's identity (models and the bytes of their local weights, resolution, instruction length,
storage dtype, the code that computes features). A rerun skips every shard whose file exists; a
killed run resumes, since a file appears only by an atomic rename. A sample without an accepted
description, or whose image is unreadable (a truncated or corrupt tar, an undecodable image:
logged with its shard and key), is skipped and counted by reason; every manifest row is either
cached or skipped. A shard's file keeps its skips: after repairing a shard, delete its file.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import json
import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from components.config import MethodConfig, ModelsConfig
from components.data.shards import UnreadableImage, shard_images
from components.data.tables import parquet_rows
from components.features.index import SHARDS, cache_settings, write_index
from components.features.source import source_pixels
from components.features.store import (
    FeaturesError,
    shard_counts,
    shard_tensors,
    texts_digest,
    write_shard,
)
from components.generation.generator import Generator
from components.method.encoders import FrozenEncoders
from components.method.features import CachedFeatures, cacheable_features
from components.models.loading import OPEN_CLIP_LOCAL, local_folder

ROOT = Path(__file__).resolve().parents[1]  # components/
FEATURE_CODE = (  # what computes a cached feature; a change invalidates the cache
    "features",
    "generation",
    "method/encoders.py",
    "method/features.py",
    "models",
)
log = logging.getLogger(__name__)
# glibc's malloc_trim; None where the C library has none (macOS, musl)
_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None) if sys.platform == "linux" else None


class Skipped:
    """Why a manifest row has no cached features."""

    REJECTED = "rejected_by_describe"  # describe wrote no usable t_ins / t_e
    NOT_DESCRIBED = "not_described"  # no row in the descriptions (e.g. describe --limit)
    UNREADABLE = "unreadable_image"  # not in its shard (a truncated tar), or undecodable


@dataclass(frozen=True)
class ShardEntry:
    """What `finish` needs of a shard's plan: its counts and file, not its texts."""

    shard: str  # file name in PREPARED/shards
    inputs: int  # its manifest rows
    to_cache: int  # samples with an accepted description
    skipped: dict[str, int]  # reason -> samples, known before reading the shard
    file: str | None  # "<shard stem>-<hash>.safetensors" in OUT/shards; None: nothing to cache


@dataclass(frozen=True)
class ShardPlan:
    shard: str
    inputs: int
    keys: list[str]  # the samples to cache, in shard order
    t_o: list[str]
    t_ins: list[str]
    t_e: list[str]
    skipped: dict[str, int]
    file: str | None

    @property
    def entry(self) -> ShardEntry:
        return ShardEntry(self.shard, self.inputs, len(self.keys), self.skipped, self.file)


@dataclass
class FeaturesSummary:
    """Counts of one `features` run; inputs = cached + skipped, always."""

    inputs: int = 0
    cached: int = 0
    skipped: int = 0
    shards: int = 0
    bytes: int = 0  # of the shard files
    bytes_per_sample: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"inputs {self.inputs} · cached {self.cached} · skipped {self.skipped} · "
            f"{self.bytes_per_sample / 1024:.1f} KiB per sample"
        )


def features_identity(models: ModelsConfig, method: MethodConfig) -> dict[str, object]:
    """Everything that decides a cached feature's value: the settings, the bytes of local
    model weights and the code that computes features."""
    settings = cache_settings(models, method)
    specs = settings["models"]
    return settings | {
        "weights": {name: _weights_digest(spec) for name, spec in specs.items() if spec},
        "code": _code_digest(),
    }


def plan_features(
    prepared: Path, descriptions: Path, identity: dict[str, object]
) -> Iterator[ShardPlan]:
    """One plan per shard of the manifest, in its order. Both tables are streamed a batch at a
    time and joined on their order (describe writes its rows in manifest order), so memory
    holds one shard's rows, never the dataset's."""
    manifest = _rows(prepared / "manifest.parquet", ["key", "shard", "sha256"], "prepare")
    described = _rows(descriptions, ["key", "t_o", "t_ins", "t_e", "status"], "describe")
    settings = json.dumps(identity, sort_keys=True).encode()
    pending = next(described, None)
    shard, rows = None, []
    for key, in_shard, sha256 in manifest:
        if in_shard != shard:
            if rows:
                yield _plan(shard, rows, settings)
            shard, rows = in_shard, []
        if pending is not None and pending[0] == key:
            rows.append((key, sha256, *pending[1:]))
            pending = next(described, None)
        else:
            rows.append((key, sha256, None, None, None, None))
    if rows:
        yield _plan(shard, rows, settings)
    if pending is not None:
        raise FeaturesError(
            f"{descriptions}: sample {pending[0]} is out of the manifest's order, repeated or not "
            "in the manifest; rerun `regionedit describe` on the same data"
        )


def described_samples(descriptions: Path) -> int:
    """Samples with an accepted description (those `features` caches)."""
    status = _rows(descriptions, ["status"], "describe")
    return sum(value == "ok" for (value,) in status)


def _rows(path: Path, columns: list[str], stage: str) -> Iterator[tuple]:
    if not path.is_file():
        raise FeaturesError(f"{path}: missing; run `regionedit {stage}` first")
    try:
        yield from parquet_rows(path, columns)
    except (OSError, ValueError, KeyError) as err:  # a truncated file, a missing column
        raise FeaturesError(
            f"{path}: unreadable ({type(err).__name__}: {err}); rerun `regionedit {stage}`"
        ) from err


def _plan(shard: str, rows: list[tuple], settings: bytes) -> ShardPlan:
    """rows: (key, sha256, t_o, t_ins, t_e, status), status None where not described."""
    keys = [row[0] for row in rows]
    if len(set(keys)) != len(keys):
        raise FeaturesError(f"{shard}: a sample appears twice in the manifest; rerun prepare")
    cached = [row for row in rows if row[5] == "ok"]
    reasons = {
        Skipped.REJECTED: sum(row[5] not in (None, "ok") for row in rows),
        Skipped.NOT_DESCRIBED: sum(row[5] is None for row in rows),
    }
    digest = hashlib.sha256(settings)
    for key, sha256, t_o, t_ins, t_e, status in rows:
        digest.update(f"{key}\t{sha256}\t{status}\t{t_o}\t{t_ins}\t{t_e}\n".encode())
    name = f"{Path(shard).stem}-{digest.hexdigest()[:16]}.safetensors" if cached else None
    return ShardPlan(
        shard,
        len(rows),
        [row[0] for row in cached],
        [row[2] for row in cached],
        [row[3] for row in cached],
        [row[4] for row in cached],
        {reason: n for reason, n in reasons.items() if n},
        name,
    )


def cache_shard(
    plan: ShardPlan,
    prepared: Path,
    out: Path,
    frozen_parts: Callable[[], tuple[FrozenEncoders, Generator]],
    resolution: int,
    z_src_side: int,
    batch_size: int,
    progress: Callable[[int], None] = lambda samples: None,
) -> bool:
    """Write the shard's file unless it exists; returns whether it was reused. `frozen_parts`
    is called only when there is work, so a rerun over finished shards loads no model."""
    if plan.file is None or (out / SHARDS / plan.file).is_file():
        return True
    encoders, generator = frozen_parts()
    batches: list[CachedFeatures] = []
    cached: list[int] = []  # indices in plan.keys
    unreadable: list[str] = []
    samples = _shard_pixels(prepared / "shards" / plan.shard, plan.keys, resolution)
    while chunk := list(itertools.islice(samples, batch_size)):
        ready = [(i, pixels) for i, pixels in chunk if pixels is not None]
        unreadable += [plan.keys[i] for i, pixels in chunk if pixels is None]
        if ready:
            rows, pixels = zip(*ready, strict=True)
            images = torch.stack(pixels).to(generator.device)
            columns = ([column[i] for i in rows] for column in (plan.t_o, plan.t_ins, plan.t_e))
            batches.append(cacheable_features(encoders, generator, images, *columns, z_src_side))
            cached += rows
        progress(len(chunk))
    texts = [texts_digest(plan.t_o[i], plan.t_ins[i], plan.t_e[i]) for i in cached]
    write_shard(
        out / SHARDS / plan.file,
        [plan.keys[i] for i in cached],
        texts,
        shard_tensors(batches),
        _counts(plan.entry, len(unreadable)),
        unreadable,
    )
    _return_freed_memory()
    return False


def _return_freed_memory() -> None:
    """Hand the heap's free pages back to the system (glibc only; elsewhere nothing).

    glibc keeps what a shard's batches freed and serves the next shard's differently sized
    tensors from fresh pages, so the process grew by about 200 bytes a sample: 1,352 -> 1,461 MiB
    over 550,000 samples at 1M, +12.6 % over its 100k peak. Trimmed after every shard, 60 shards
    in one process stayed at 1,094 MiB against 1,210 -> 1,278 untrimmed."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def finish(
    out: Path, plans: list[ShardEntry], identity: dict[str, object], metrics: Path | None
) -> FeaturesSummary:
    """Check every shard's file, write the index and the counts; drop files of other runs."""
    summary, reasons = FeaturesSummary(shards=len(plans)), Counter()
    for plan in plans:
        counts = _counts(plan, 0)
        if plan.file is not None:
            path = out / SHARDS / plan.file
            counts = shard_counts(path)  # what reading the shard found
            if counts != _counts(plan, counts["skipped"].get(Skipped.UNREADABLE, 0)):
                raise FeaturesError(
                    f"{path}: its counts differ from the plan of {plan.shard}; delete it and run "
                    "`regionedit features` again"
                )
            summary.bytes += path.stat().st_size
        summary.inputs += counts["inputs"]
        summary.cached += counts["cached"]
        summary.skipped += sum(counts["skipped"].values())
        reasons.update(counts["skipped"])
    summary.bytes_per_sample = summary.bytes // max(summary.cached, 1)
    summary.skipped_by_reason = dict(sorted(reasons.items()))
    write_index(out, identity, {plan.shard: plan.file for plan in plans})
    keep = {plan.file for plan in plans}
    for path in (out / SHARDS).glob("*"):
        if path.name not in keep and path.is_file():
            path.unlink()
    metrics = metrics or out / "features_metrics.json"
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps(asdict(summary), indent=2) + "\n", encoding="utf-8")
    return summary


def _counts(plan: ShardEntry, unreadable: int) -> dict[str, object]:
    """A shard file's counts, when `unreadable` of the plan's samples could not be read."""
    skipped = plan.skipped | ({Skipped.UNREADABLE: unreadable} if unreadable else {})
    return {"inputs": plan.inputs, "cached": plan.to_cache - unreadable, "skipped": skipped}


def _shard_pixels(
    shard: Path, keys: list[str], resolution: int
) -> Iterator[tuple[int, Tensor | None]]:
    """(index in `keys`, source pixels) of each sample, in shard order (which is theirs), one
    at a time; None (logged) for a sample whose image the shard does not give or that does not
    decode."""
    if not shard.is_file():
        raise FeaturesError(f"{shard}: missing shard; rerun `regionedit prepare`")
    index = {key: i for i, key in enumerate(keys)}
    for image in shard_images(shard, keys):
        try:
            pixels = source_pixels(image.data, resolution)
        except UnreadableImage as err:
            log.warning("%s: sample %s skipped (%s): %s", shard, image.key, Skipped.UNREADABLE, err)
            pixels = None
        yield index[image.key], pixels


def _weights_digest(spec: str) -> str:
    """A hash of a local model folder's files; a hub id stands for itself."""
    folder = local_folder(spec.removeprefix(OPEN_CLIP_LOCAL))
    if folder is None or not folder.is_dir():
        return spec
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def _code_digest() -> str:
    digest = hashlib.sha256()
    for entry in FEATURE_CODE:
        path = ROOT / entry
        for source in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(source.relative_to(ROOT).as_posix().encode() + source.read_bytes())
    return digest.hexdigest()[:16]
