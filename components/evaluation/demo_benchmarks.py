"""Small benchmarks in the exact published formats, made from the demo data: the embedded default.

They let the real loaders, the metrics and the report run offline, in CI and in `dvc repro`.
The files are written by components/evaluation/formats: Emu Edit's parquet file, and
MagicBrush's official test folder, its ground-truth outputs made by really drawing each turn's
edit inside its mask (white = edited, as in MagicBrush's masks). Same seed, same bytes.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageStat

from components.data.demo import CAPTIONS, PHOTOS
from components.data.images import encode_png, to_rgb
from components.data.scenes import COLOURS, scene
from components.describe.checking import Edit, Rejection
from components.describe.template import apply_instruction, write_edit
from components.describe.vocabulary import PLACES
from components.evaluation.formats import EMU_EDIT_SCHEMA as EMU_EDIT_SCHEMA  # re-exported: tests
from components.evaluation.formats import (
    EMU_EDIT_TASKS,
    MagicBrushSessionFiles,
    MagicBrushTurnFiles,
    emu_edit_row,
    write_emu_edit,
    write_magicbrush,
)
from components.evaluation.formats import HF_IMAGE as HF_IMAGE  # re-exported: tests

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
    rows = [
        emu_edit_row(idx, encode_png(image), edit.instruction, task, t_o, edit.target)
        for idx, (task, image, t_o, edit) in enumerate(_emu_edit_cases(seed, count))
    ]
    return write_emu_edit(out, rows)


def write_magicbrush_demo(out: Path, seed: int, sessions: int = 6) -> Path:
    """Write `sessions` sessions of 1, 2, 3, 1, … turns in the official layout under `out/test`
    and return `out`. Each turn adds a coloured circle or square at a place; its mask is the
    shape's box, and its ground-truth output is its input with the shape drawn. The global
    description of each image is the picture's caption with the shapes added so far; the local
    description of an output is the shape it added."""
    rng = random.Random(f"regionedit-magicbrush-demo:{seed}")
    ids = [str(i) for i in rng.sample(range(100_000, 1_000_000), sessions)]
    return write_magicbrush(out, _magicbrush_sessions(ids, _pictures(seed, rng), rng))


def _magicbrush_sessions(
    ids: list[str], pictures: Iterator[tuple[Image.Image, str]], rng: random.Random
) -> Iterator[MagicBrushSessionFiles]:
    for number, img_id in enumerate(ids):
        image, caption = next(pictures)
        first = image = _square(image, MAGICBRUSH_SIDE)
        description, turns = caption, []
        for place in rng.sample(PLACES, 1 + number % 3):
            image, mask, instruction, thing = _draw_edit(image, place, rng)
            caption = f"{caption}, with {thing} at the {place}"
            turns.append(MagicBrushTurnFiles(image, mask, instruction, caption, thing))
        yield MagicBrushSessionFiles(img_id, first, description, tuple(turns))


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
