"""The `features` stage's work: the frozen features of every described sample, per shard.

Each prepared shard gets one file (components/features/store.py) whose name holds a hash of what
decides its contents: the shard's manifest rows (key, pixel sha256), their descriptions, and the
cache's identity (models and the bytes of their local weights, resolution, instruction length,
storage dtype, the code that computes features). A rerun skips every shard whose file exists; a
killed run resumes, since a file appears only by an atomic rename. A sample without an accepted
description is skipped and counted by reason; every manifest row is either cached or skipped.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
from PIL import UnidentifiedImageError

from components.config import MethodConfig, ModelsConfig
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


class Skipped:
    """Why a manifest row has no cached features."""

    REJECTED = "rejected_by_describe"  # describe wrote no usable t_ins / t_e
    NOT_DESCRIBED = "not_described"  # no row in the descriptions (e.g. describe --limit)


@dataclass(frozen=True)
class ShardPlan:
    shard: str  # file name in PREPARED/shards
    inputs: int  # its manifest rows
    keys: list[str]  # the samples to cache, in shard order
    t_o: list[str]
    t_ins: list[str]
    t_e: list[str]
    skipped: dict[str, int]  # reason -> samples
    file: str | None  # "<shard stem>-<hash>.safetensors" in OUT/shards; None: nothing to cache


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
) -> list[ShardPlan]:
    """One plan per shard of the manifest, in its order."""
    manifest = _table(prepared / "manifest.parquet", ["key", "shard", "sha256"], "prepare")
    described = _table(descriptions, ["key", "t_o", "t_ins", "t_e", "status"], "describe")
    for table, path in ((manifest, prepared / "manifest.parquet"), (described, descriptions)):
        if table["key"].duplicated().any():
            duplicate = table["key"][table["key"].duplicated()].iloc[0]
            raise FeaturesError(f"{path}: sample {duplicate} appears twice; rerun its stage")
    rows = manifest.merge(described, on="key", how="left")
    settings = json.dumps(identity, sort_keys=True).encode()
    return [_plan(shard, group, settings) for shard, group in rows.groupby("shard", sort=False)]


def _table(path: Path, columns: list[str], stage: str) -> pd.DataFrame:
    if not path.is_file():
        raise FeaturesError(f"{path}: missing; run `regionedit {stage}` first")
    try:
        return pd.read_parquet(path, columns=columns)
    except Exception as err:  # pyarrow's errors for a truncated file or a missing column vary
        raise FeaturesError(
            f"{path}: unreadable ({type(err).__name__}: {err}); rerun `regionedit {stage}`"
        ) from err


def _plan(shard: str, rows: pd.DataFrame, settings: bytes) -> ShardPlan:
    ok = rows["status"] == "ok"
    reasons = {
        Skipped.REJECTED: int((rows["status"].notna() & ~ok).sum()),
        Skipped.NOT_DESCRIBED: int(rows["status"].isna().sum()),
    }
    cached = rows[ok]
    digest = hashlib.sha256(settings)
    for row in rows.itertuples():
        digest.update(
            f"{row.key}\t{row.sha256}\t{row.status}\t{row.t_o}\t{row.t_ins}\t{row.t_e}\n".encode()
        )
    name = f"{Path(shard).stem}-{digest.hexdigest()[:16]}.safetensors" if len(cached) else None
    return ShardPlan(
        shard,
        len(rows),
        cached["key"].tolist(),
        cached["t_o"].tolist(),
        cached["t_ins"].tolist(),
        cached["t_e"].tolist(),
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
    pixels = _shard_pixels(prepared / "shards" / plan.shard, plan.keys, resolution)
    for start in range(0, len(plan.keys), batch_size):
        end = min(start + batch_size, len(plan.keys))
        images = torch.stack([next(pixels) for _ in range(start, end)]).to(generator.device)
        part = slice(start, end)
        batches.append(
            cacheable_features(
                encoders,
                generator,
                images,
                plan.t_o[part],
                plan.t_ins[part],
                plan.t_e[part],
                z_src_side,
            )
        )
        progress(end - start)
    counts = {"inputs": plan.inputs, "cached": len(plan.keys), "skipped": plan.skipped}
    texts = [texts_digest(*row) for row in zip(plan.t_o, plan.t_ins, plan.t_e, strict=True)]
    write_shard(out / SHARDS / plan.file, plan.keys, texts, shard_tensors(batches), counts)
    return False


def finish(
    out: Path, plans: list[ShardPlan], identity: dict[str, object], metrics: Path | None
) -> FeaturesSummary:
    """Check every shard's file, write the index and the counts; drop files of other runs."""
    summary, reasons = FeaturesSummary(shards=len(plans)), Counter()
    for plan in plans:
        summary.inputs += plan.inputs
        summary.cached += len(plan.keys)
        summary.skipped += sum(plan.skipped.values())
        reasons.update(plan.skipped)
        if plan.file is None:
            continue
        path = out / SHARDS / plan.file
        expected = {"inputs": plan.inputs, "cached": len(plan.keys), "skipped": plan.skipped}
        if shard_counts(path) != expected:
            raise FeaturesError(
                f"{path}: its counts differ from the plan of {plan.shard}; delete it and run "
                "`regionedit features` again"
            )
        summary.bytes += path.stat().st_size
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


def _shard_pixels(shard: Path, keys: list[str], resolution: int) -> Iterator[torch.Tensor]:
    """The source pixels of `keys`, in shard order (which is theirs), one at a time."""
    if not shard.is_file():
        raise FeaturesError(f"{shard}: missing shard; rerun `regionedit prepare`")
    wanted = iter(keys)
    expected = next(wanted, None)
    try:
        with tarfile.open(shard) as tar:
            for member in tar:
                key, _, ext = member.name.rpartition(".")
                if key == expected and ext in ("jpg", "png"):
                    yield _pixels(shard, key, tar.extractfile(member).read(), resolution)
                    expected = next(wanted, None)
    except (tarfile.TarError, EOFError) as err:
        raise FeaturesError(
            f"{shard}: unreadable shard ({err}); rerun `regionedit prepare`"
        ) from err
    if expected is not None:
        raise FeaturesError(
            f"{shard}: no image for manifest key {expected}: the shards and manifest.parquet "
            "disagree; rerun `regionedit prepare`"
        )


def _pixels(shard: Path, key: str, data: bytes, resolution: int) -> torch.Tensor:
    try:
        return source_pixels(data, resolution)
    except (OSError, UnidentifiedImageError) as err:
        raise FeaturesError(
            f"{shard}: sample {key} is not a readable image ({err}); rerun `regionedit prepare`"
        ) from err


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
