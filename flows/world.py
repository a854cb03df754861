"""Prefect flows of the world (DESIGN §10): its test sets (the `benchmarks` stage) and its
checks (the `world-checks` stage: each model alone, then the method's loss over given regions
with the generator in the loop)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch
from prefect import flow, get_run_logger
from tqdm import tqdm

from components.config import Params
from components.method.build import build_region_edit_model
from components.models.provenance import provenance
from components.world.checks import clip_check, inpainting_check
from components.world.edits import held_out_edit
from components.world.landscape import REGIONS, TERMS, gradient_aucs, region_losses, summarise
from components.world.testsets import write_world

NAMESPACE = "landscape"  # its own scenes: neither training's, the zoo's nor the test sets'


@flow(name="world-test-sets")
def world_test_sets_flow(out: Path, seed: int, count: int, side: int) -> dict:
    """A world test set in MagicBrush's and Emu Edit's formats (the `benchmarks` stage)."""
    summary = write_world(out, seed, count, side)
    get_run_logger().info("world test set (seed %d) in %s: %s", seed, out, summary)
    return summary


@flow(name="world-checks")
def world_checks_flow(params: Params, metrics: Path, landscape: Path) -> dict:
    """The models' checks (components/world/checks.py) and the loss landscape, in `metrics`."""
    world, models = params.world, params.models
    checks: dict = {"profile": params.profile, "models": provenance(models)}
    for name, clip in (("clip", models.clip), ("metric_clip", models.metric_clip)):
        checks[f"{name}/swapped_caption_accuracy"] = clip_check(clip, params.seed, world.side)
    checks |= inpainting_check(
        models.inpainting, params.method, params.seed, world.side, world.checks
    )
    checks |= {
        f"landscape/{k}": v for k, v in loss_landscape(params, world.checks, landscape).items()
    }
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps(checks, indent=2) + "\n")
    get_run_logger().info("world checks: %s", checks)
    return checks


def check_lines(checks: dict) -> list[str]:
    """The measured checks of `world_checks_flow`, a line each (what `world-checks` prints)."""
    return [f"{name}: {value:.4f}" for name, value in checks.items() if isinstance(value, float)]


def loss_landscape(params: Params, count: int, out: Path) -> dict:
    """L_CLIP and its terms for the ground-truth, empty, whole-image and random same-area
    regions of `count` held-out world edits (kinds in turn, half with a distractor), with the
    method's frozen models and an untrained head (the head does not enter L_CLIP), and the
    gradient's ranking of the ground-truth cells at the empty and the untrained head's region.
    Writes one row per edit and region to `out` (CSV); return the means, win rates and AUCs."""
    torch.manual_seed(params.seed)
    model = build_region_edit_model(params.models, params.method).eval()
    rows, aucs, table = [], [], []
    for index in tqdm(range(count), desc="landscape", unit="edit"):
        edit = held_out_edit(params.seed, index, NAMESPACE)
        scores = region_losses(model, edit, params.seed * 1_000_003 + index)
        aucs.append(gradient_aucs(model, edit, params.seed * 1_000_003 + index))
        rows.append(scores)
        for region in REGIONS:
            table.append(
                {"edit": index, "kind": edit.kind, "distractor": edit.distractor, "region": region}
                | scores[region]
            )
    summary = {"edits": float(count), **summarise(rows, aucs)}
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["edit", "kind", "distractor", "region", *TERMS, "cells"])
        writer.writeheader()
        writer.writerows(table)
    return summary
