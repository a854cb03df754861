"""The region head's two forms (`method.head`) side by side on the demo batch.

    python benchmarks/head_forms.py [--params params.yaml] [--steps 50] [--out FILE.json]

For each form, from the same seed: how much P_region varies across the patches of one image
at initialisation (a head whose P is the same everywhere can only paint all or nothing), then
`--steps` AdamW steps of L_total on the four demo edits (the overfitting test's setting) with
L_CLIP, the mask's area and the share of mask cells that changed. Models are `params.yaml`'s
(the embedded default: the tiny random zoo, so this measures the optimisation, not quality).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from components.config import load_params
from components.data.demo_edits import demo_edit_batch
from components.method.build import build_region_edit_model


def measure(params, form: str, steps: int) -> dict:
    torch.manual_seed(params.seed)
    method = params.method.model_copy(update={"head": form})
    model = build_region_edit_model(params.models, method)
    batch = demo_edit_batch(4, method.resolution)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-3)
    rows = []
    for _ in range(steps):
        out = model(*batch, generator=torch.Generator().manual_seed(params.seed))
        optimizer.zero_grad()
        out.terms["total"].backward()
        optimizer.step()
        hard = out.mask.detach() > 0.5  # the straight-through mask is 1 - eps where p - p != 0
        rows.append((out.terms["total"].item(), out.terms["clip"].item(), hard))
        if len(rows) == 1:
            spread = out.p_region.detach().std(dim=1).mean().item()

    def first_last(i: int) -> list[float]:
        return [statistics.mean(r[i] for r in rows[:5]), statistics.mean(r[i] for r in rows[-5:])]

    return {
        "p_region_std_across_patches_at_init": spread,
        "l_total_first5_last5": first_last(0),
        "l_clip_first5_last5": first_last(1),
        "mask_fraction_first_last": [
            rows[0][2].float().mean().item(),
            rows[-1][2].float().mean().item(),
        ],
        "mask_cells_changed": (rows[-1][2] != rows[0][2]).float().mean().item(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    params = load_params(args.params)
    results = {
        "models": params.models.inpainting,
        "steps": args.steps,
        "forms": {form: measure(params, form, args.steps) for form in ("residual", "paper")},
    }
    for form, row in results["forms"].items():
        (t0, t1), (c0, c1) = row["l_total_first5_last5"], row["l_clip_first5_last5"]
        print(
            f"{form:8s} P std at init {row['p_region_std_across_patches_at_init']:.4f}  "
            f"L_total {t0:.4f} -> {t1:.4f}  L_CLIP {c0:.4f} -> {c1:.4f}  "
            f"mask {row['mask_fraction_first_last'][0]:.2f} -> "
            f"{row['mask_fraction_first_last'][1]:.2f}  "
            f"cells changed {row['mask_cells_changed']:.1%}"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
