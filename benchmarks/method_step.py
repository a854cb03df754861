"""Time and peak memory of one training step and one edit, broken down by component.

    python benchmarks/method_step.py [--params params.yaml] [--device cpu|cuda] [--batch 4]
                                     [--repeats 5] [--json OUT]

The models are those params.yaml names (the tiny zoo by default: run `regionedit zoo` first).
Components are the stages RegionEditModel.forward and Editor.edit mark (encoders, head,
generation, composition, clip_on_result, losses, backward; for an edit also paste_back), so
this breakdown follows the code instead of copying it (breakdown.py, shared with
train_step.py). Peak memory is the CUDA allocator's peak within each component on a GPU, and the
process's peak RSS so far on the CPU.
"""

from __future__ import annotations

import argparse
import json

import torch
from breakdown import Breakdown

from components.config import load_params
from components.data.demo_edits import DEMO_EDITS, demo_edit_batch, demo_photo
from components.describe.describer import Describer
from components.editing import Editor
from components.method.build import build_region_edit_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=len(DEMO_EDITS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="write the breakdown here")
    args = parser.parse_args()
    params = load_params(args.params)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_region_edit_model(params.models, params.method).to(device)
    model.generator.to(device)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    images, t_o, t_ins, t_e = demo_edit_batch(args.batch, params.method.resolution)
    images = images.to(device)

    step = Breakdown(device)
    for repeat in range(args.repeats + 1):  # the first run warms up and is not counted
        timer = step if repeat else Breakdown(device)
        out = model(images, t_o, t_ins, t_e, torch.Generator(device).manual_seed(0), timer)
        with timer("backward"):
            optimizer.zero_grad()
            out.terms["total"].backward()
            optimizer.step()

    editor = Editor(model, Describer.from_params(params))
    photo, original, instruction, target = DEMO_EDITS[0]
    image = demo_photo(photo)
    edit = Breakdown(device)
    for repeat in range(args.repeats + 1):
        editor.edit(
            image,
            instruction,
            original,
            target,
            seed=0,
            stage=edit if repeat else Breakdown(device),
        )

    print(
        f"device {device}, batch {args.batch}, resolution {params.method.resolution}, "
        f"K = {params.method.steps} steps, median of {args.repeats}"
    )
    report = {
        "training_step": step.table(f"one training step (batch {args.batch})"),
        "edit": edit.table(f"one edit ({image.width}x{image.height} photo)"),
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
