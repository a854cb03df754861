"""The source image X as the training step sees it: decoded, RGB, resized to the resolution."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def source_pixels(data: bytes, resolution: int) -> Tensor:
    """Encoded image bytes -> (3, resolution, resolution) floats in [0, 1], bicubic as PIL does;
    training and the feature cache share it: z_src is the latent of the very pixels trained on."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = image.resize((resolution, resolution), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
