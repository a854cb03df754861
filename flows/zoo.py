"""Prefect flows for the `zoo` and `world-zoo` stages: one task around each pure builder."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task

from components.config import WorldConfig
from components.world.zoo.build import build_world_zoo
from components.zoo.build import build_zoo


@task(name="build-zoo")
def build_models(out: Path, seed: int) -> dict[str, Path]:
    return build_zoo(out, seed)


@flow(name="zoo")
def zoo_flow(out: Path, seed: int) -> dict[str, Path]:
    """The embedded default's tiny random models, each in its library's own format, in `out`."""
    paths = build_models(out, seed)
    get_run_logger().info("built %s in %s", ", ".join(paths), out)
    return paths


@task(name="train-world-zoo")
def train_world_models(out: Path, seed: int, world: WorldConfig) -> dict[str, Path]:
    return build_world_zoo(out, seed, world.side, world.zoo)


@flow(name="world-zoo")
def world_zoo_flow(out: Path, seed: int, world: WorldConfig) -> dict[str, Path]:
    """The world's frozen models, trained on world scenes (checked by the world-checks stage)."""
    paths = train_world_models(out, seed, world)
    get_run_logger().info("trained %s in %s", ", ".join(paths), out)
    return paths
