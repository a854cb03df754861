"""Generated scenes: coloured shapes on a background, the caption that says so, and each
object's exact pixel mask.

A scene is a small graph (background; objects with colour, shape, size and place) that
renders to pixels and writes its own caption. Objects sit in distinct cells of a 3x3 grid and
stay inside their cell, so they never overlap: every object's mask is exact, and the pixels an
edit changes are known. Scene i depends only on (seed, i): the same seed draws the same scenes.

The world (DESIGN §10) is built on these: training sees the rendered image and the caption
only; test sets add edits with their rendered targets and ground-truth regions
(components/world).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "red": (200, 30, 40),
    "green": (40, 160, 60),
    "blue": (40, 70, 200),
    "yellow": (235, 205, 40),
    "orange": (240, 130, 30),
    "purple": (130, 50, 160),
    "pink": (235, 130, 170),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "grey": (128, 128, 128),
    "brown": (120, 75, 40),
    "teal": (30, 140, 140),
}
SHAPES = ("circle", "square", "triangle", "star")
SIZES = {"small": 0.10, "medium": 0.13, "large": 0.16}  # radius as a fraction of the side
ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "centre", "right")
CELLS = 9  # a 3x3 grid; one object a cell
# What scenes are drawn from: a few well-separated words of the renderable ones above (which the
# template writer also knows), so that the world's tiny models learn them within the world zoo's
# CPU budget (README, Budgets). Backgrounds and objects never share a colour.
OBJECT_COLOURS = ("red", "green", "blue", "yellow", "purple", "white")
BACKGROUNDS = ("grey", "black")
DRAWN_SHAPES = ("circle", "square", "triangle")
DRAWN_SIZES = ("small", "large")
STAR_INNER = 0.45  # a star's inner radius as a fraction of its outer one


@dataclass(frozen=True)
class SceneObject:
    """One shape: its words, its cell (row-major in the 3x3 grid) and its offset in the cell.

    `dx`, `dy` in [-1, 1] move the centre within the room the cell leaves around the shape.
    """

    colour: str
    shape: str
    size: str
    cell: int
    dx: float = 0.0
    dy: float = 0.0

    @property
    def place(self) -> str:
        row, column = ROWS[self.cell // 3], COLUMNS[self.cell % 3]
        return "centre" if (row, column) == ("middle", "centre") else f"{row} {column}"

    @property
    def phrase(self) -> str:
        return f"a {self.size} {self.colour} {self.shape} at the {self.place}"

    def geometry(self, side: int) -> tuple[float, float, float]:
        """Centre x, centre y and radius in pixels for a `side`-pixel square picture."""
        cell = side / 3
        # one pixel of margin inside the cell: PIL fills edge pixels, so a shape touching the
        # cell's border would share pixels with its neighbour's
        radius = min(SIZES[self.size] * side, cell / 2 - 1)
        room = max(cell / 2 - radius - 1, 0.0)
        cx = (self.cell % 3 + 0.5) * cell + self.dx * room
        cy = (self.cell // 3 + 0.5) * cell + self.dy * room
        return cx, cy, radius


@dataclass(frozen=True)
class Scene:
    background: str
    objects: tuple[SceneObject, ...]

    @property
    def caption(self) -> str:
        phrases = [o.phrase for o in self.objects]
        if not phrases:
            return f"a plain {self.background} background"
        things = (
            phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
        )
        article = "an" if self.background[0] in "aeiou" else "a"
        return f"{things} on {article} {self.background} background"

    def render(self, side: int) -> Image.Image:
        image = Image.new("RGB", (side, side), COLOURS[self.background])
        draw = ImageDraw.Draw(image)
        for scene_object in self.objects:
            _draw_shape(draw, scene_object, side, COLOURS[scene_object.colour])
        return image

    def mask(self, index: int, side: int) -> np.ndarray:
        """Object `index`'s exact pixels in the rendered picture (boolean, side x side)."""
        mask = Image.new("L", (side, side), 0)
        _draw_shape(ImageDraw.Draw(mask), self.objects[index], side, 255)
        return np.asarray(mask) > 0

    def with_object(self, index: int, **changes: object) -> Scene:
        """The scene with object `index` changed (colour, shape, size or cell)."""
        objects = list(self.objects)
        objects[index] = replace(objects[index], **changes)
        return Scene(self.background, tuple(objects))

    def without(self, index: int) -> Scene:
        return Scene(self.background, self.objects[:index] + self.objects[index + 1 :])


def draw_scene(rng: random.Random, objects: int) -> Scene:
    """A random scene of `objects` shapes, no two alike in both colour and shape."""
    background = rng.choice(BACKGROUNDS)
    cells = rng.sample(range(CELLS), objects)
    chosen: list[SceneObject] = []
    while len(chosen) < objects:
        colour, shape = rng.choice(OBJECT_COLOURS), rng.choice(DRAWN_SHAPES)
        if any((o.colour, o.shape) == (colour, shape) for o in chosen):
            continue
        size = rng.choice(DRAWN_SIZES)
        dx, dy = rng.uniform(-1, 1), rng.uniform(-1, 1)
        chosen.append(SceneObject(colour, shape, size, cells[len(chosen)], dx, dy))
    return Scene(background, tuple(chosen))


def scene_graph(seed: int, index: int, max_objects: int = 3) -> Scene:
    """Scene `index` of `seed`: one to `max_objects` objects."""
    rng = random.Random(f"regionedit-scene:{seed}:{index}")
    return draw_scene(rng, rng.randint(1, max_objects))


def scene(seed: int, index: int, side: int = 256) -> tuple[Image.Image, str]:
    """Draw scene `index` for `seed`; return the picture and its caption."""
    graph = scene_graph(seed, index)
    return graph.render(side), graph.caption


def _draw_shape(draw: ImageDraw.ImageDraw, o: SceneObject, side: int, fill: object) -> None:
    cx, cy, r = o.geometry(side)
    if o.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif o.shape == "square":
        s = r * 0.85  # a square of the same area as the circle is 0.89 r; keep it in its cell
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=fill)
    else:
        corners = 3 if o.shape == "triangle" else 10
        points = []
        for k in range(corners):
            radius = r if o.shape == "triangle" or k % 2 == 0 else r * STAR_INNER
            angle = -math.pi / 2 + 2 * math.pi * k / corners
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
        draw.polygon(points, fill=fill)
