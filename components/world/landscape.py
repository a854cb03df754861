"""The loss landscape (DESIGN §10): before any training claim, does the ground-truth region
score the best loss with the generator in the loop?

For held-out world edits, the method's own `region_losses` (the training step's generation,
composition and CLIP terms) scores four regions on the head's patch grid: the ground truth
(every cell the ground-truth edit region touches, as `on_grid` counts it: what the head must
mark for the generator to repaint the whole object), the empty region, the whole image, and a
random block of as many cells. L_semAlign does not depend on the region (it reads the head's
features), so the ranking of L_total over regions is that of L_CLIP, which is reported. If
the ground truth does not score best, no optimiser can find it: the world's models are at
fault.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from components.evaluation.metrics import on_grid
from components.evaluation.systems import EditRequest, random_area
from components.method.mask import to_grid
from components.method.model import RegionEditModel
from components.world.edits import WorldEdit

REGIONS = ("ground_truth", "empty", "whole_image", "random_area")
TERMS = ("clip_global", "clip_direction", "clip_structure", "clip")


@torch.no_grad()
def region_losses(model: RegionEditModel, edit: WorldEdit, seed: int) -> dict[str, dict]:
    """Each region's loss terms for one edit, and its cell count."""
    side = model.cfg.resolution
    image = edit.source_image(side)
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255
    device = model.generator.device
    pixels = pixels.to(device)
    features = model.frozen_features(
        pixels, [edit.t_o], [edit.t_ins], [edit.t_e], model.cfg.in_training.resolution
    )
    grid = to_grid(features.f_img[..., 0]).shape[-1]
    truth = on_grid(edit.region(side), grid).astype(np.float32)
    regions = {
        "ground_truth": truth,
        "empty": np.zeros_like(truth),
        "whole_image": np.ones_like(truth),
        "random_area": random_cells(truth, seed),
    }
    scores = {}
    for name, cells in regions.items():
        mask = torch.from_numpy(cells).float()[None, None].to(device)
        terms, _ = model.region_losses(
            pixels, features, mask, mask, torch.Generator(device).manual_seed(seed)
        )
        scores[name] = {term: float(terms[term]) for term in TERMS} | {"cells": int(cells.sum())}
    return scores


def random_cells(truth: np.ndarray, seed: int) -> np.ndarray:
    """A block of as many cells as `truth`, at a place drawn from `seed` (`random_area` on the
    grid)."""
    picture = Image.fromarray((truth * 255).astype(np.uint8), "L")
    request = EditRequest("landscape", picture.convert("RGB"), "", truth=picture)
    return (np.asarray(random_area(request, seed)) > 127).astype(np.float32)


def summarise(rows: list[dict]) -> dict[str, float]:
    """Mean of each term per region, and how often (and by how much) the ground truth scores
    a lower L_CLIP than each other region."""
    summary: dict[str, float] = {}
    for region in REGIONS:
        for term in TERMS:
            summary[f"{region}/{term}"] = float(np.mean([r[region][term] for r in rows]))
    for region in REGIONS[1:]:
        margins = np.array([r[region]["clip"] - r["ground_truth"]["clip"] for r in rows])
        summary[f"ground_truth_beats/{region}"] = float((margins > 0).mean())
        summary[f"margin/{region}"] = float(margins.mean())
    return summary
