"""Prefect flows for the `zoo` and `world-zoo` stages: one task around each pure builder."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task

from components.config import MethodConfig, WorldConfig
from components.models.loading import load_clip, load_instruction_encoder
from components.random_models.build import build_zoo
from components.world.checks import HELD_OUT, NAMESPACE, clip_check, inpainting_check
from components.world.zoo.build import Trained, build_world_zoo
from components.world.zoo.curves import plot_curves
from components.world.zoo.instruction import instruction_check
from components.world.zoo.release import CURVES, record_checks, release_size, write_release
from components.world.zoo.resumable import RunSettings
from components.world.zoo.scenes import ScenePool


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
def train_world_models(out: Path, seed: int, world: WorldConfig) -> dict[str, Trained]:
    return build_world_zoo(out, seed, world.side, world.zoo)


@flow(name="world-zoo")
def world_zoo_flow(out: Path, seed: int, world: WorldConfig) -> list[str]:
    """The world's frozen models, trained on world scenes (checked by the world-checks stage)."""
    trained = train_world_models(out, seed, world)
    get_run_logger().info("trained %s in %s", ", ".join(trained), out)
    return list(trained)


@task(name="train-world-release")
def train_release_models(
    work: Path, seed: int, world: WorldConfig, method: MethodConfig
) -> dict[str, Trained]:
    cfg = world.release
    run = RunSettings(work / "states", cfg.checkpoint_minutes * 60, cfg.curve_points)
    return build_world_zoo(work / "trained", seed, world.side, cfg, run, method)


@task(name="check-world-release")
def check_release(out: Path, seed: int, world: WorldConfig, method: MethodConfig) -> dict:
    """Each model's check, measured on the fp16 release as every user loads it."""
    instruction = {}
    if (out / "instruction-encoder").is_dir():
        tokenizer, encoder = load_instruction_encoder(str(out / "instruction-encoder"))
        clip = load_clip(f"local-dir:{out / 'clip'}")[0].eval()
        held_out = ScenePool.draw(seed, HELD_OUT, world.side, NAMESPACE)
        accuracy = instruction_check(encoder.eval(), tokenizer, clip, held_out, seed)
        instruction["instruction_encoder/swapped_caption_accuracy"] = accuracy
    return instruction | {
        "clip/swapped_caption_accuracy": clip_check(f"local-dir:{out / 'clip'}", seed, world.side),
        "metric_clip/swapped_caption_accuracy": clip_check(
            f"local-dir:{out / 'metric-clip'}", seed, world.side
        ),
        **inpainting_check(
            str(out / "sd-inpainting"), method, seed, world.side, world.release.checks
        ),
    }


@flow(name="world-release")
def world_release_flow(
    out: Path, work: Path, seed: int, world: WorldConfig, method: MethodConfig
) -> dict:
    """Train the world's release resumably in `work` (states every few minutes), write it to
    `out` in fp16 with its manifest, check it there, and plot each model's check curve."""
    logger = get_run_logger()
    trained = train_release_models(work, seed, world, method)
    states = {name: model.state for name, model in trained.items()}
    trained_by = {"budget": world.release.model_dump(), "seed": seed, "side": world.side}
    write_release(work / "trained", out, states, trained_by)
    checks = check_release(out, seed, world, method)
    plot_curves({name: state.curve for name, state in states.items()}, out / CURVES)
    manifest = record_checks(out, checks)
    logger.info("release in %s: %.1f MB, checks %s", out, release_size(out) / 1e6, checks)
    return manifest
