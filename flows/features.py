"""Prefect flow for the `features` stage: one task per shard, then the index and the counts.

Each task writes its shard's file atomically (components/features/shards.py), so a rerun
skips finished shards and a failed or killed run resumes. The frozen models are loaded once
per process, and only if some shard still needs them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from tqdm import tqdm

from components.config import Params
from components.features.shards import (
    FeaturesSummary,
    ShardPlan,
    cache_shard,
    described_samples,
    features_identity,
    finish,
    plan_features,
)
from components.features.store import write_unconditional
from components.generation.generator import Generator
from components.method.build import build_frozen_parts
from components.method.encoders import FrozenEncoders

_frozen: dict[tuple, tuple[FrozenEncoders, Generator]] = {}


def frozen_parts_for(params: Params, device: str) -> tuple[FrozenEncoders, Generator]:
    """The frozen encoders and generator, loaded once per process, models and device."""
    key = (params.models, params.method.instruction_tokens, device)
    if key not in _frozen:
        encoders, generator = build_frozen_parts(params.models, params.method.instruction_tokens)
        _frozen[key] = (encoders.to(device), generator.to(device))
    return _frozen[key]


@task(name="cache-shard-features", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def cache_shard_features(
    plan: ShardPlan,
    prepared: Path,
    out: Path,
    params: Params,
    batch_size: int,
    device: str,
    progress: tqdm,
) -> bool:
    return cache_shard(
        plan,
        prepared,
        out,
        lambda: frozen_parts_for(params, device),
        params.method.resolution,
        params.method.in_training.resolution,  # z_src serves the training step's generator
        batch_size,
        progress.update,
    )


@task(name="cache-unconditional-prompt", cache_policy=NO_CACHE)
def cache_unconditional(out: Path, params: Params, device: str) -> None:
    _, generator = frozen_parts_for(params, device)
    write_unconditional(out, generator.encode_prompt([""]).unconditional)


@flow(name="features")
def features_flow(
    prepared: Path,
    descriptions: Path,
    out: Path,
    params: Params,
    metrics: Path | None = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> FeaturesSummary:
    """The frozen features of every described sample in `prepared`, one file per shard in `out`;
    `device` cpu, cuda or auto."""
    logger = get_run_logger()
    device = "cuda" if device == "auto" and torch.cuda.is_available() else device
    device = "cpu" if device == "auto" else device
    identity = features_identity(params.models, params.method)
    out.mkdir(parents=True, exist_ok=True)
    entries, reused = [], 0  # the shards' counts; each plan's texts are dropped once it is done
    with tqdm(total=described_samples(descriptions), desc="features", unit="sample") as progress:
        for plan in plan_features(prepared, descriptions, identity):
            if cache_shard_features(plan, prepared, out, params, batch_size, device, progress):
                reused += 1
                progress.update(len(plan.keys))
            entries.append(plan.entry)
    cache_unconditional(out, params, device)
    summary = finish(out, entries, identity, metrics)
    logger.info("%s (%d of %d shards reused)", summary.line(), reused, len(entries))
    if summary.skipped_by_reason:
        reasons = ", ".join(f"{reason} {n}" for reason, n in summary.skipped_by_reason.items())
        logger.warning("skipped by reason: %s", reasons)
    return summary
