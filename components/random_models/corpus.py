"""The local text the zoo's tokenizers are trained on: captions and editing instructions.

Made here, never downloaded: the demo photographs' captions, captions of generated scenes, and
instructions written from templates in the words the method sees (paper section 3: t_o, t_ins, t_e).
"""

from __future__ import annotations

import csv
import random

from components.data.demo import CAPTIONS
from components.data.scenes import COLOURS, SHAPES, scene

OBJECTS = (
    "cat", "dog", "horse", "astronaut", "helmet", "flag", "coffee cup", "rocket", "motorcycle",
    "car", "tree", "house", "bird", "flower", "boat", "man", "woman", "hat", "table", "apple",
    "sky", "wall", "camera", "moon", "chair", "window", "road", "mountain", "river", "cake",
)  # fmt: skip
TEMPLATES = (
    "change the {a} into a {b}",
    "replace the {a} with a {b}",
    "turn the {a} into a {b}",
    "make the {a} {colour}",
    "paint the {a} {colour}",
    "remove the {a}",
    "add a {b} next to the {a}",
    "put a {colour} {b} on the {a}",
    "make the {a} bigger",
    "make the {a} smaller",
    "let the {a} wear a {colour} hat",
    "Change the {colour} {a} to a {b}.",
)


def corpus(seed: int, scenes: int = 200, instructions: int = 400) -> list[str]:
    """Demo captions, then `scenes` scene captions, then `instructions` edit sentences."""
    with CAPTIONS.open(encoding="utf-8", newline="") as handle:
        captions = [row["caption"] for row in csv.DictReader(handle)]
    scene_captions = [scene(seed, index)[1] for index in range(scenes)]
    return captions + scene_captions + edit_instructions(seed, instructions)


def edit_instructions(seed: int, count: int) -> list[str]:
    """`count` instructions from the templates, with objects, shapes and colours drawn by `seed`."""
    rng = random.Random(f"regionedit-instructions:{seed}")
    things = OBJECTS + SHAPES
    lines = []
    for _ in range(count):
        a, b = rng.sample(things, 2)
        lines.append(rng.choice(TEMPLATES).format(a=a, b=b, colour=rng.choice(list(COLOURS))))
    return lines
