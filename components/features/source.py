"""The source images X out of the prepared shards, and as the training step sees them.

`describe`, `features` and training read shards through `shard_images`: a tar that ends early
or breaks off in a corrupt header costs the samples past that point, not the run, and an image
that does not decode costs that sample only. Each stage logs, skips and counts such a sample.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

IMAGE_EXTENSIONS = ("jpg", "png")


class UnreadableImage(Exception):
    """A sample's image that its shard does not give, or that does not decode."""


@dataclass(frozen=True)
class ShardImage:
    """One wanted sample of a shard: its encoded image, or why the shard does not give it."""

    key: str
    encoded: bytes | None
    problem: str = ""

    @property
    def data(self) -> bytes:
        if self.encoded is None:
            raise UnreadableImage(self.problem)
        return self.encoded


def shard_images(shard: Path, keys: Iterable[str]) -> Iterator[ShardImage]:
    """The image of each of `keys`, streamed in tar order (only wanted members are read), then
    each key the tar did not give, in the order of `keys`, with the reason: every key once."""
    wanted = dict.fromkeys(keys)
    problem = "no image in the shard"
    try:
        with tarfile.open(shard) as tar:
            for member in tar:
                key, _, ext = member.name.rpartition(".")
                if key in wanted and ext in IMAGE_EXTENSIONS:
                    data = tar.extractfile(member).read()
                    del wanted[key]
                    yield ShardImage(key, data)
    except (tarfile.TarError, EOFError) as err:  # a truncated or corrupt tar, met mid-way
        problem = f"the shard breaks off before its image ({type(err).__name__}: {err})"
    for key in wanted:
        yield ShardImage(key, None, problem)


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
