"""Small benchmarks in the exact published formats, made from the demo data: the embedded default.

They let the real loaders, the metrics and the report run offline, in CI and in `dvc repro`.
Emu Edit: one parquet file with the Hugging Face dataset's columns and types. MagicBrush: the
official test folder (`test/edit_sessions.json`, `test/images/<img_id>/…png`, and the
description files `test/global_descriptions.json` / `test/local_descriptions.json` that CLIP-T
reads), its ground-truth outputs made by really drawing each turn's edit inside its mask (white
= edited, as in MagicBrush's masks). Same seed, same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageStat

from components.data.demo import CAPTIONS, PHOTOS
from components.data.images import encode_png, to_rgb
from components.data.scenes import COLOURS, scene
from components.describe.checking import Edit, Rejection
from components.describe.template import apply_instruction, write_edit
from components.describe.vocabulary import PLACES

HF_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
EMU_EDIT_SCHEMA = pa.schema(
    [
        ("instruction", pa.string()),
        ("image", HF_IMAGE),
        ("task", pa.string()),
        ("split", pa.string()),
        ("idx", pa.int64()),
        ("hash", pa.string()),
        ("input_caption", pa.string()),
        ("output_caption", pa.string()),
    ],
    # the features record `datasets` writes, so that `load_dataset` reads the column as an Image
    metadata={
        "huggingface": json.dumps(
            {
                "info": {
                    "features": {
                        "instruction": {"dtype": "string", "_type": "Value"},
                        "image": {"_type": "Image"},
                        "task": {"dtype": "string", "_type": "Value"},
                        "split": {"dtype": "string", "_type": "Value"},
                        "idx": {"dtype": "int64", "_type": "Value"},
                        "hash": {"dtype": "string", "_type": "Value"},
                        "input_caption": {"dtype": "string", "_type": "Value"},
                        "output_caption": {"dtype": "string", "_type": "Value"},
                    }
                }
            }
        )
    },
)
EMU_EDIT_TASKS = ("add", "remove", "color", "local", "background", "global")
STYLES = ("a pencil drawing", "a watercolour painting", "an oil painting")  # the `global` edits
EMU_EDIT_SIDE = 192  # longest side of a demo input
MAGICBRUSH_SIDE = 128  # MagicBrush's own images are square (512 px)
WRITER_ATTEMPTS = 16  # template seeds tried for an edit of the wanted task on one picture


def write_emu_edit_demo(out: Path, seed: int, count: int = 12) -> Path:
    """Write `count` test rows to `out/test-00000-of-00001.parquet` and return that file.

    Tasks cycle through EMU_EDIT_TASKS; inputs are demo photographs and generated scenes; the
    instruction and output caption come from the template writer (`background` edits are the
    writer's recolouring of a scene's background; `global` style edits it cannot write are
    worded here).
    """
    cases = _emu_edit_cases(seed, count)
    rows = []
    for idx, (task, image, t_o, edit) in enumerate(cases):
        png = encode_png(image)
        rows.append(
            {
                "instruction": edit.instruction,
                "image": {"bytes": png, "path": None},
                "task": task,
                "split": "test",
                "idx": idx,
                "hash": hashlib.sha256(png).hexdigest(),
                "input_caption": t_o,
                "output_caption": edit.target,
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    file = out / "test-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=EMU_EDIT_SCHEMA), file)
    return file


def write_magicbrush_demo(out: Path, seed: int, sessions: int = 6) -> Path:
    """Write `sessions` sessions of 1, 2, 3, 1, … turns in the official layout under `out/test`
    and return `out`. Each turn adds a coloured circle or square at a place; its mask is the
    shape's box, and its ground-truth output is its input with the shape drawn. The global
    description of each image is the picture's caption with the shapes added so far; the local
    description of an output is the shape it added."""
    rng = random.Random(f"regionedit-magicbrush-demo:{seed}")
    ids = [str(i) for i in rng.sample(range(100_000, 1_000_000), sessions)]
    pictures = _pictures(seed, rng)
    shutil.rmtree(out / "test", ignore_errors=True)  # no session of an older write may survive
    edit_sessions, global_descriptions, local_descriptions = {}, {}, {}
    for number, img_id in enumerate(ids):
        folder = out / "test" / "images" / img_id
        folder.mkdir(parents=True, exist_ok=True)
        image, caption = next(pictures)
        image = _square(image, MAGICBRUSH_SIDE)
        image.save(folder / f"{img_id}-input.png")
        turns, source = [], f"{img_id}-input.png"
        global_descriptions[img_id], local_descriptions[img_id] = {source: caption}, {}
        for k, place in enumerate(rng.sample(PLACES, 1 + number % 3), start=1):
            image, mask, instruction, thing = _draw_edit(image, place, rng)
            image.save(folder / f"{img_id}-output{k}.png")
            mask.save(folder / f"{img_id}-mask{k}.png")
            output = f"{img_id}-output{k}.png"
            caption = f"{caption}, with {thing} at the {place}"
            global_descriptions[img_id][output], local_descriptions[img_id][output] = caption, thing
            turns.append(
                {
                    "input": source,
                    "output": output,
                    "mask": f"{img_id}-mask{k}.png",
                    "instruction": instruction,
                }
            )
            source = output  # the next turn edits this turn's ground truth
        edit_sessions[img_id] = turns
    for name, content in (
        ("edit_sessions.json", edit_sessions),
        ("global_descriptions.json", global_descriptions),
        ("local_descriptions.json", local_descriptions),
    ):
        (out / "test" / name).write_text(json.dumps(content, indent=2) + "\n")
    return out


def _emu_edit_cases(seed: int, count: int) -> list[tuple[str, Image.Image, str, Edit]]:
    """(task, input, input caption, edit) for tasks in EMU_EDIT_TASKS order, each on the next
    picture that allows it."""
    rng = random.Random(f"regionedit-emu-edit-demo:{seed}")
    pictures = _pictures(seed, rng)
    cases = []
    for index in range(count):
        task = EMU_EDIT_TASKS[index % len(EMU_EDIT_TASKS)]
        edit = None
        while edit is None:
            image, t_o = next(pictures)
            edit = _edit_for(task, t_o, seed, rng)
        image.thumbnail((EMU_EDIT_SIDE, EMU_EDIT_SIDE), Image.Resampling.BICUBIC)
        cases.append((task, image, t_o, edit))
    return cases


def _edit_for(task: str, t_o: str, seed: int, rng: random.Random) -> Edit | None:
    """An edit of kind `task` for the caption `t_o`, or None when the writer has none."""
    if task == "global":
        style = rng.choice(STYLES)
        return Edit(f"make it look like {style}", f"{style} of {t_o}")
    if task == "background":
        colour = rng.choice([c for c in COLOURS if f"{c} background" not in t_o])
        instruction = f"make the background {colour}"
        target = apply_instruction(t_o, instruction)
        return None if isinstance(target, Rejection) else Edit(instruction, target)
    for attempt in range(WRITER_ATTEMPTS):
        edit = write_edit(t_o, seed * WRITER_ATTEMPTS + attempt)
        if _task_of(edit.instruction) == task:
            return edit
    return None


def _task_of(instruction: str) -> str:
    """The Emu Edit task of a template instruction."""
    verb = instruction.split()[0]
    if verb == "make":
        return "background" if " background " in f"{instruction} " else "color"
    return {"add": "add", "remove": "remove"}.get(verb, "local")  # replace / turn … into


def _pictures(seed: int, rng: random.Random) -> Iterator[tuple[Image.Image, str]]:
    """Demo photographs in a seeded order, each followed by a generated scene, then scenes."""
    with CAPTIONS.open(encoding="utf-8", newline="") as handle:
        photos = [(row["file"], row["caption"]) for row in csv.DictReader(handle)]
    index = 0
    for file, caption in rng.sample(photos, len(photos)):
        with Image.open(PHOTOS / file) as photo:
            image = to_rgb(photo.copy())
        yield image, caption
        yield scene(seed, index)
        index += 1
    while True:
        yield scene(seed, index)
        index += 1


def _square(image: Image.Image, side: int) -> Image.Image:
    """The centred square crop, resized to `side`."""
    short = min(image.size)
    left, top = (image.width - short) // 2, (image.height - short) // 2
    box = (left, top, left + short, top + short)
    return image.resize((side, side), Image.Resampling.BICUBIC, box=box)


def _draw_edit(
    image: Image.Image, place: str, rng: random.Random
) -> tuple[Image.Image, Image.Image, str, str]:
    """(output, mask, instruction, what was added): a circle or square drawn at `place`, its box
    as the mask, in a colour that stands out from what was there."""
    row, column = divmod(PLACES.index(place), 3)
    cell = image.width / 3
    radius = cell * rng.uniform(0.25, 0.4)
    cx, cy = cell * (column + 0.5), cell * (row + 0.5)
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    there = ImageStat.Stat(image.crop(tuple(round(v) for v in box))).mean
    visible = [c for c, rgb in COLOURS.items() if np.abs(np.subtract(rgb, there)).sum() > 150]
    colour, shape = rng.choice(visible), rng.choice(("circle", "square"))
    output = image.copy()
    draw = ImageDraw.Draw(output)
    (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=COLOURS[colour])
    mask = Image.new("L", image.size, 0)
    margin = 2  # the annotators' brush strokes cover a little more than the object
    ImageDraw.Draw(mask).rectangle(
        (box[0] - margin, box[1] - margin, box[2] + margin, box[3] + margin), fill=255
    )
    thing = f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} {shape}"
    return output, mask, f"add {thing} at the {place}", thing
