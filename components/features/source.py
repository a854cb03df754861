"""The source image X as the training step sees it, from a prepared shard's image bytes.

An image that does not decode raises `UnreadableImage`, as a shard that does not give it does
(components/data/shards.py): the caller logs, skips and counts the sample.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from components.data.shards import UnreadableImage


def source_pixels(data: bytes, resolution: int) -> Tensor:
    """Encoded image bytes -> (3, resolution, resolution) floats in [0, 1], bicubic as PIL does;
    training and the feature cache share it: z_src is the latent of the very pixels trained on.
    UnreadableImage if the bytes do not decode."""
    try:
        image = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as err:  # PIL's errors for corrupt bytes vary in type
        raise UnreadableImage(f"not a decodable image ({type(err).__name__}: {err})") from err
    image = image.resize((resolution, resolution), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
