"""Prefect flow for the `prepare` stage: one task around the pure `prepare_dataset`."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task

from components.config import Params
from components.data.images import ImageLimits
from components.data.prepare import PrepareSummary, prepare_dataset
from components.data.sources import open_source, source_identity


@task(name="build-shards")
def build_shards(source: str, out: Path, params: Params, metrics: Path | None) -> PrepareSummary:
    cfg = params.prepare
    reading = (
        source,
        cfg.image_column,
        cfg.caption_column,
        cfg.demo_scenes,
        params.seed,
        params.world,
    )
    return prepare_dataset(
        open_source(*reading),
        out,
        ImageLimits(cfg.min_side, cfg.max_pixels),
        cfg.samples_per_shard,
        cfg.workers,
        metrics,
        source=source_identity(*reading),
    )


@flow(name="prepare")
def prepare_flow(
    source: str, out: Path, params: Params, metrics: Path | None = None
) -> PrepareSummary:
    """Images + captions from `source` -> WebDataset shards, manifest and rejections in `out`."""
    summary = build_shards(source, out, params, metrics)
    logger = get_run_logger()
    logger.info(summary.line())
    if summary.rejected_by_reason:
        reasons = ", ".join(f"{reason} {n}" for reason, n in summary.rejected_by_reason.items())
        logger.warning(
            "rejected by reason: %s; one line each in %s", reasons, out / "rejected.jsonl"
        )
    return summary
