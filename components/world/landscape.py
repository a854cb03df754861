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

The values can rank the regions rightly while the gradient still points nowhere: what the head
learns from is the negative gradient of L_CLIP on P_region. `gradient_aucs` measures, at the
empty region and at the untrained head's region, how well that gradient ranks the ground-truth
cells above the rest (the AUC: 0.5 is no information, 1 a perfect ranking), for L_CLIP and each
of its terms. The generator repaints the whole image there, so that every cell's gradient is
defined (in training it repaints the proposal: the hard mask and its top cells, dilated).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from scipy.stats import rankdata

from components.evaluation.metrics import on_grid
from components.evaluation.systems import EditRequest, random_area
from components.method.mask import straight_through_mask, to_grid
from components.method.model import FrozenFeatures, RegionEditModel
from components.world.edits import WorldEdit

REGIONS = ("ground_truth", "empty", "whole_image", "random_area")
TERMS = ("clip_global", "clip_direction", "clip_structure", "clip")


GRADIENT_AT = ("empty", "untrained_head")


@torch.no_grad()
def region_losses(model: RegionEditModel, edit: WorldEdit, seed: int) -> dict[str, dict]:
    """Each region's loss terms for one edit, and its cell count."""
    pixels, features, truth = _edit_inputs(model, edit)
    regions = {
        "ground_truth": truth,
        "empty": np.zeros_like(truth),
        "whole_image": np.ones_like(truth),
        "random_area": random_cells(truth, seed),
    }
    scores = {}
    for name, cells in regions.items():
        mask = torch.from_numpy(cells).float()[None, None].to(pixels.device)
        terms, _ = model.region_losses(
            pixels, features, mask, mask, torch.Generator(pixels.device).manual_seed(seed)
        )
        scores[name] = {term: float(terms[term]) for term in TERMS} | {"cells": int(cells.sum())}
    return scores


def gradient_aucs(model: RegionEditModel, edit: WorldEdit, seed: int) -> dict[str, dict]:
    """At the empty region and at the untrained head's P_region: the AUC with which the
    negative gradient of each term on P_region ranks the ground-truth cells above the others
    (NaN where the ground truth is every cell or none)."""
    pixels, features, truth = _edit_inputs(model, edit)
    with torch.no_grad():
        head = model.head(features.f_img, features.f_ins, features.ins_padding).p_region
    starts = {"empty": torch.zeros_like(head), "untrained_head": head}
    everywhere = torch.ones(1, 1, *truth.shape, device=pixels.device)
    aucs = {}
    for name, start in starts.items():
        p_region = start.clone().requires_grad_(True)
        mask = to_grid(straight_through_mask(p_region, model.cfg.tau))
        terms, _ = model.region_losses(
            pixels, features, mask, everywhere, torch.Generator(pixels.device).manual_seed(seed)
        )
        aucs[name] = {}
        for term in TERMS:
            (gradient,) = torch.autograd.grad(terms[term], p_region, retain_graph=True)
            aucs[name][term] = ranking_auc(-gradient[0].cpu().numpy(), truth.reshape(-1) > 0)
    return aucs


def ranking_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """The Mann-Whitney AUC: the chance that a positive scores above a negative (ties: half)."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _edit_inputs(
    model: RegionEditModel, edit: WorldEdit
) -> tuple[torch.Tensor, FrozenFeatures, np.ndarray]:
    """The edit's source pixels, its frozen features, and its ground truth on the head's grid."""
    side = model.cfg.resolution
    image = edit.source_image(side)
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255
    pixels = pixels.to(model.generator.device)
    with torch.no_grad():
        features = model.frozen_features(
            pixels, [edit.t_o], [edit.t_ins], [edit.t_e], model.cfg.in_training.resolution
        )
    grid = to_grid(features.f_img[..., 0]).shape[-1]
    return pixels, features, on_grid(edit.region(side), grid).astype(np.float32)


def random_cells(truth: np.ndarray, seed: int) -> np.ndarray:
    """A block of as many cells as `truth`, at a place drawn from `seed` (`random_area` on the
    grid)."""
    picture = Image.fromarray((truth * 255).astype(np.uint8), "L")
    request = EditRequest("landscape", picture.convert("RGB"), "", truth=picture)
    return (np.asarray(random_area(request, seed)) > 127).astype(np.float32)


def summarise(rows: list[dict], aucs: list[dict] | None = None) -> dict[str, float]:
    """Mean of each term per region; how often the ground truth scores lower than each other
    region, on L_CLIP (with the mean margin) and on each term; and each gradient AUC's mean
    over the edits where it is defined."""
    summary: dict[str, float] = {}
    for region in REGIONS:
        for term in TERMS:
            summary[f"{region}/{term}"] = float(np.mean([r[region][term] for r in rows]))
    for region in REGIONS[1:]:
        margins = np.array([r[region]["clip"] - r["ground_truth"]["clip"] for r in rows])
        summary[f"ground_truth_beats/{region}"] = float((margins > 0).mean())
        summary[f"margin/{region}"] = float(margins.mean())
        for term in TERMS[:-1]:
            wins = [r[region][term] > r["ground_truth"][term] for r in rows]
            summary[f"ground_truth_beats/{region}/{term}"] = float(np.mean(wins))
    for start in GRADIENT_AT if aucs else ():
        for term in TERMS:
            values = [a[start][term] for a in aucs if not np.isnan(a[start][term])]
            summary[f"gradient_auc/{start}/{term}"] = float(np.mean(values)) if values else np.nan
    return summary
