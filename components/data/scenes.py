"""Procedurally generated scenes (coloured shapes on a background) with a caption that says so.

They top up the embedded demo so that the five nested scale subsets have distinct samples.
Scene i depends only on (seed, i): the same seed always draws the same pictures.
"""

from __future__ import annotations

import math
import random

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
SIZES = {"small": 0.12, "medium": 0.2, "large": 0.3}  # radius as a fraction of the side


def scene(seed: int, index: int, side: int = 256) -> tuple[Image.Image, str]:
    """Draw scene `index` for `seed`; return the picture and its caption."""
    rng = random.Random(f"regionedit-scene:{seed}:{index}")
    background = rng.choice(list(COLOURS))
    image = Image.new("RGB", (side, side), COLOURS[background])
    draw = ImageDraw.Draw(image)
    phrases = []
    for _ in range(rng.randint(1, 3)):
        colour = rng.choice([c for c in COLOURS if c != background])
        shape, size = rng.choice(SHAPES), rng.choice(list(SIZES))
        radius = SIZES[size] * side
        cx, cy = (rng.uniform(radius, side - radius) for _ in range(2))
        _draw_shape(draw, shape, cx, cy, radius, COLOURS[colour])
        phrases.append(f"a {size} {colour} {shape} at the {_place(cx, cy, side)}")
    caption = f"{_join(phrases)} on a {background} background"
    return image, caption


def _draw_shape(
    draw: ImageDraw.ImageDraw,
    shape: str,
    cx: float,
    cy: float,
    r: float,
    fill: tuple[int, int, int],
) -> None:
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:
        corners = 3 if shape == "triangle" else 10
        points = []
        for k in range(corners):
            radius = r if shape == "triangle" or k % 2 == 0 else r * 0.45
            angle = -math.pi / 2 + 2 * math.pi * k / corners
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
        draw.polygon(points, fill=fill)


def _place(cx: float, cy: float, side: int) -> str:
    row = ("top", "middle", "bottom")[min(int(3 * cy / side), 2)]
    column = ("left", "centre", "right")[min(int(3 * cx / side), 2)]
    return "centre" if row == "middle" and column == "centre" else f"{row} {column}"


def _join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
