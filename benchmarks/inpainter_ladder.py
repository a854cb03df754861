"""Where the world's inpainter breaks (issue 28): its edit success in the ground-truth region,
split by edit kind and by what it is handed.

The world-checks' inpainter check (`components/world/checks.py`) asks one question: given the
ground-truth region of a held-out edit and t_e, does it paint the rendered target there? This
benchmark asks it under easier conditions, one at a time, so the failing part shows:

- as checked: the method's sampler settings (params.yaml `method.steps`, guidance), the exact
  region, t_e;
- more denoising steps (20);
- the region dilated by 2 pixels (the latent mask is the pixel mask resized to nearest, so a
  tight region leaves an object's edge cells to the source);
- a prompt that names only the edited object (no other object to bind the hole to).

Then the training task itself: restoring an object of a held-out scene (the hole its exact
pixels, the prompt the scene's own caption, or an empty one), under a few sampler settings. A
UNet that fails here fails before any edit asks it to bind a new colour to a place.

Then two probes of the text path: how close the hole's mean colour comes to the colour the
prompt asks for, over every object colour (a UNet that reads the colour word follows it), and
the UNet's noise-prediction error inside the hole and outside it with the true caption, an empty
one and another scene's (text the UNet uses lowers the error in the hole only).

    python benchmarks/inpainter_ladder.py [--inpainting models/world/sd-inpainting] [--label L]

Writes benchmarks/results/inpainter_ladder[_<label>].{json,md} (docs/world-release.md includes
the release's markdown).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from PIL import Image
from scipy.ndimage import binary_dilation

from components.config import load_params
from components.data.scenes import COLOURS, OBJECT_COLOURS
from components.evaluation.metrics import KnownAnswer, edit_success, inside, within_tolerance
from components.generation import load_generator
from components.world.checks import NAMESPACE, repaint
from components.world.edits import KINDS, WorldEdit, held_out_edit
from components.world.zoo.inpainting import CONTEXT
from components.world.zoo.scenes import ScenePool

ROOT = Path(__file__).resolve().parent.parent
SIDE = 64
SWEEP_EDITS = 6  # recolour edits of the colour sweep
LOSS_SCENES = 128  # held-out scenes of the text-use probe
LOSS_TIMESTEPS = (300, 600, 900)
RESTORED_SCENES = 40
RESTORED_SHARE = 0.8  # of the object's pixels within the edit tolerance, as edit_success asks
SAMPLERS = ((20, 3.0), (50, None))  # beside the method's own; None: the method's guidance


def _solo_prompt(edit: WorldEdit) -> str:
    """The target scene's caption with only the edited object in it (none for a removal)."""
    kept = () if edit.kind == "remove" else (edit.target.objects[edit.index],)
    return dataclasses.replace(edit.target, objects=kept).caption


@torch.no_grad()
def rungs(generator, steps: int, guidance: float, count: int) -> list[dict]:
    conditions = [
        ("as checked", steps, 0, False),
        ("20 denoising steps", 20, 0, False),
        ("region dilated 2 px", steps, 2, False),
        ("only the edited object in the prompt", steps, 0, True),
        ("all three", 20, 2, True),
    ]
    rows = []
    for name, k, dilation, solo in conditions:
        success: dict[str, list[float]] = defaultdict(list)
        for index in range(count):
            edit = held_out_edit(0, index, NAMESPACE)
            truth = inside(Image.fromarray(edit.region(SIDE).astype(np.uint8) * 255, "L"))
            region = binary_dilation(truth, iterations=dilation) if dilation else truth
            prompt = _solo_prompt(edit) if solo else edit.t_e
            source = edit.source_image(SIDE)
            generated = repaint(generator, source, region, prompt, index, k, guidance)
            edited = Image.fromarray(np.where(truth[..., None], generated, np.asarray(source)))
            answer = KnownAnswer(source, Image.fromarray(truth), edit.target_image(SIDE))
            success[edit.kind].append(edit_success(edited, answer))
        rows.append(
            {
                "condition": name,
                "steps": k,
                "dilation": dilation,
                "solo_prompt": solo,
                **{kind: round(float(np.mean(success[kind])), 3) for kind in KINDS},
                "all": round(float(np.mean([v for kind in KINDS for v in success[kind]])), 3),
                "edits": {kind: len(success[kind]) for kind in KINDS},
            }
        )
        print(rows[-1], flush=True)
    return rows


@torch.no_grad()
def colour_sweep(generator, steps: int, guidance: float) -> dict:
    """Mean |hole colour - asked colour| (on [0, 1]) when the prompt asks for each object colour,
    against the same distance to the colours it was not asked for."""
    asked, others, edits = [], [], 0
    for index in range(200):
        edit = held_out_edit(0, index, NAMESPACE)
        if edit.kind != "recolour":
            continue
        truth = inside(Image.fromarray(edit.region(SIDE).astype(np.uint8) * 255, "L"))
        for colour in OBJECT_COLOURS:
            target = dataclasses.replace(
                edit.target,
                objects=tuple(
                    dataclasses.replace(o, colour=colour) if i == edit.index else o
                    for i, o in enumerate(edit.target.objects)
                ),
            )
            source = edit.source_image(SIDE)
            painted = repaint(generator, source, truth, target.caption, 0, steps, guidance)[truth]
            mean = painted.reshape(-1, 3).mean(0) / 255
            for other in OBJECT_COLOURS:
                gap = float(np.abs(mean - np.array(COLOURS[other]) / 255).mean())
                (asked if other == colour else others).append(gap)
        edits += 1
        if edits == SWEEP_EDITS:
            break
    return {
        "edits": edits,
        "asked_colour_gap": round(float(np.mean(asked)), 3),
        "other_colours_gap": round(float(np.mean(others)), 3),
    }


@torch.no_grad()
def restoration(generator, steps: int, guidance: float) -> list[dict]:
    """Share of held-out scenes whose object, cut out to its exact pixels, the inpainter paints
    back (>= RESTORED_SHARE of its pixels within the tolerance), and the mean colour gap there,
    with the scene's caption and with an empty prompt, per sampler setting."""
    pool = ScenePool.draw(0, RESTORED_SCENES, SIDE, "inpainter-ladder-restore")
    rows = []
    for k, scale in ((steps, guidance), *((n, g or guidance) for n, g in SAMPLERS)):
        for prompt in ("caption", "empty"):
            restored, gaps = [], []
            for i, scene in enumerate(pool.scenes):
                hole = pool.masks[i, i % len(scene.objects)]
                caption = scene.caption if prompt == "caption" else ""
                source = Image.fromarray(pool.pixels[i])
                painted = repaint(generator, source, hole, caption, i, k, scale)
                close = within_tolerance(Image.fromarray(painted), source)[hole].mean()
                restored.append(close >= RESTORED_SHARE)
                gap = painted[hole].mean(0) - pool.pixels[i][hole].mean(0)
                gaps.append(np.abs(gap).mean() / 255)
            rows.append(
                {
                    "steps": k,
                    "guidance_scale": scale,
                    "prompt": prompt,
                    "restored": round(float(np.mean(restored)), 3),
                    "colour_gap": round(float(np.mean(gaps)), 3),
                    "scenes": len(restored),
                }
            )
            print(rows[-1], flush=True)
    return rows


@torch.no_grad()
def text_use(generator) -> dict:
    """The UNet's noise-prediction error in the hole and outside, per caption given."""
    parts = generator.parts
    unet, vae, tokenizer = parts.unet, parts.vae, parts.tokenizer
    noise_schedule = DDPMScheduler.from_config(parts.scheduler.config)  # the training noise
    pool = ScenePool.draw(0, LOSS_SCENES, SIDE, "inpainter-ladder")
    rng, sampler = random.Random(0), torch.Generator().manual_seed(0)
    scale = vae.config.scaling_factor
    errors: dict[str, dict[str, list[float]]] = {
        k: {"hole": [], "outside": []} for k in ("true", "empty", "another scene's")
    }

    def states(captions: list[str]) -> torch.Tensor:
        ids = tokenizer(
            captions, padding="max_length", max_length=CONTEXT, truncation=True, return_tensors="pt"
        ).input_ids
        return parts.text_encoder(ids, return_dict=False)[0]

    for start in range(0, LOSS_SCENES, 32):
        index = torch.arange(start, min(start + 32, LOSS_SCENES))
        x = pool.images(index) * 2 - 1
        objects = [(i, rng.randrange(len(pool.scenes[i].objects))) for i in index.tolist()]
        mask = torch.from_numpy(np.stack([pool.masks[i, k] for i, k in objects]))[:, None].float()
        z = vae.encode(x).latent_dist.mode() * scale
        masked = vae.encode(x * (mask < 0.5)).latent_dist.mode() * scale
        m = F.interpolate(mask, size=z.shape[-2:])
        hole = (F.max_pool2d(mask, SIDE // z.shape[-1]) > 0).float().expand_as(z)
        noise = torch.randn(z.shape, generator=sampler)
        captions = pool.captions(index)
        for t in LOSS_TIMESTEPS:
            timesteps = torch.full((len(z),), t)
            z_t = noise_schedule.add_noise(z, noise, timesteps)
            for name, given in (
                ("true", captions),
                ("empty", [""] * len(captions)),
                ("another scene's", captions[1:] + captions[:1]),
            ):
                prediction = unet(torch.cat([z_t, m, masked], 1), timesteps, states(given)).sample
                error = (prediction - noise) ** 2
                errors[name]["hole"].append(float((error * hole).sum() / hole.sum()))
                errors[name]["outside"].append(float((error * (1 - hole)).sum() / (1 - hole).sum()))
    return {
        name: {where: round(float(np.mean(v)), 4) for where, v in parts_.items()}
        for name, parts_ in errors.items()
    }


def markdown(record: dict) -> str:
    lines = [
        f"# Where the world's inpainter breaks: {record['inpainting']}",
        "",
        f"Edit success in the ground-truth region on {record['count']} held-out world edits "
        f"(the world-checks' inpainter check), guidance {record['guidance_scale']}, "
        f"{record['machine']}.",
        "",
        "| handed | steps | recolour | remove | reshape | all |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in record["rungs"]:
        cells = " | ".join(f"{row[k]:.2f}" for k in (*KINDS, "all"))
        lines.append(f"| {row['condition']} | {row['steps']} | {cells} |")
    sweep, use = record["colour_sweep"], record["text_use"]
    lines += [
        "",
        f"Restoring an object of a held-out scene (the training task: the hole its exact pixels; "
        f"{record['restoration'][0]['scenes']} scenes; restored: at least "
        f"{RESTORED_SHARE:.0%} of its pixels within the edit tolerance):",
        "",
        "| steps | guidance | prompt | restored | mean colour gap |",
        "|---:|---:|---|---:|---:|",
        *(
            f"| {r['steps']} | {r['guidance_scale']} | {r['prompt']} | {r['restored']:.2f} | "
            f"{r['colour_gap']:.3f} |"
            for r in record["restoration"]
        ),
        "",
        f"Colour sweep ({sweep['edits']} recolour edits, every object colour asked in turn): "
        f"the hole's mean colour is {sweep['asked_colour_gap']:.3f} from the asked colour and "
        f"{sweep['other_colours_gap']:.3f} from the others (per channel, on [0, 1]).",
        "",
        "| caption given | noise error in the hole | outside |",
        "|---|---:|---:|",
        *(f"| {name} | {v['hole']:.4f} | {v['outside']:.4f} |" for name, v in use.items()),
        "",
        f"Regenerate: `python benchmarks/inpainter_ladder.py{record['options']}`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inpainting", default="models/world/sd-inpainting")
    parser.add_argument("--count", type=int, default=48, help="held-out edits")
    parser.add_argument("--label", default="", help="names the result files (another UNet)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    method = load_params(ROOT / "params.yaml").method
    generator = load_generator(args.inpainting, method.scheduler)
    record = {
        "inpainting": args.inpainting,
        "options": "".join(
            f" --{name} {value}"
            for name, value, default in (
                ("inpainting", args.inpainting, "models/world/sd-inpainting"),
                ("count", args.count, 48),
                ("label", args.label, ""),
            )
            if value != default
        ),
        "count": args.count,
        "guidance_scale": method.guidance_scale,
        "machine": f"{os.cpu_count()} cores, {torch.get_num_threads()} threads",
        "rungs": rungs(generator, method.steps, method.guidance_scale, args.count),
        "restoration": restoration(generator, method.steps, method.guidance_scale),
        "colour_sweep": colour_sweep(generator, 20, method.guidance_scale),
        "text_use": text_use(generator),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / "_".join(filter(None, ["inpainter_ladder", args.label]))
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(record))
    print(markdown(record))


if __name__ == "__main__":
    main()
