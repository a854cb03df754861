"""Shared fixtures: images made in memory, captioned folders, the Prefect test harness."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.data.images import ImageLimits

LIMITS = ImageLimits(min_side=16, max_pixels=1_000_000)


def image_bytes(image: Image.Image, fmt: str = "PNG", **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def noise_image(seed: int, size: tuple[int, int] = (48, 32)) -> Image.Image:
    """A distinct RGB picture per seed (so no two are duplicates)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def write_folder(root: Path, files: dict[str, bytes], captions: list[tuple[str, str]]) -> Path:
    """A captioned folder source: the files plus captions.csv with the given rows."""
    root.mkdir(parents=True, exist_ok=True)
    for name, payload in files.items():
        (root / name).write_bytes(payload)
    with (root / "captions.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "caption"])
        writer.writerows(captions)
    return root


@pytest.fixture(scope="session")
def prefect_harness():
    """A real, temporary Prefect API for tests that run flows."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield
