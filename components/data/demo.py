"""The embedded demo: scikit-image's own photographs with our captions, plus generated scenes."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import skimage

from components.data.images import encode_png
from components.data.records import SourceRecord
from components.data.scenes import scene

CAPTIONS = Path(__file__).with_name("demo_captions.csv")
PHOTOS = Path(skimage.__file__).parent / "data"  # shipped inside the scikit-image wheel


def demo_records(scenes: int, seed: int) -> Iterator[SourceRecord]:
    """The photographs in caption-file order, then `scenes` generated scenes."""
    with CAPTIONS.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            yield SourceRecord(
                f"demo:{row['file']}", row["caption"], path=str(PHOTOS / row["file"])
            )
    for index in range(scenes):
        image, caption = scene(seed, index)
        yield SourceRecord(f"demo:scene-{index:05d}", caption, data=encode_png(image))
