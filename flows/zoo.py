"""Prefect flow for the `zoo` stage: one task around the pure `build_zoo`."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task

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
