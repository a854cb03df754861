"""Four demo photographs with hand-written descriptions and instructions.

For method tests and benchmarks until the `describe` stage writes t_o, t_ins and t_e.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from components.data.demo import PHOTOS

# (photo, t_o, t_ins, t_e)
DEMO_EDITS = [
    (
        "chelsea.png",
        "an orange tabby cat lying down",
        "turn the cat into a dog",
        "a brown dog lying down",
    ),
    (
        "coffee.png",
        "a cup of coffee on a red table",
        "make the cup blue",
        "a blue cup of coffee on a red table",
    ),
    (
        "astronaut.png",
        "a smiling astronaut in a white spacesuit",
        "give the astronaut a red helmet",
        "a smiling astronaut in a white spacesuit with a red helmet",
    ),
    (
        "rocket.jpg",
        "a white rocket on its launch pad under a blue sky",
        "add clouds to the sky",
        "a white rocket on its launch pad under a cloudy sky",
    ),
]


def demo_photo(name: str) -> Image.Image:
    return Image.open(PHOTOS / name).convert("RGB")


def demo_edit_batch(n: int, side: int) -> tuple[torch.Tensor, list[str], list[str], list[str]]:
    """Images (n, 3, side, side) in [0, 1] and the three text lists."""
    rows = DEMO_EDITS[:n]
    pixels = [
        np.asarray(demo_photo(r[0]).resize((side, side), Image.Resampling.BICUBIC)) for r in rows
    ]
    images = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255
    return images, [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]
