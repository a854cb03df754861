"""The `world` source of prepare, what training may see of the world: each scene's picture and
its caption, nothing more.

`prepare --source world` reads these records. A record is built from the rendered PNG and the
caption alone, so no mask, target or scene graph can reach the shards (DESIGN §10); test sets
draw their scenes from another RNG namespace (components/world/edits).
"""

from __future__ import annotations

from collections.abc import Iterator

from components.data.images import encode_png
from components.data.records import SourceRecord
from components.data.scenes import scene


def training_records(scenes: int, seed: int, side: int) -> Iterator[SourceRecord]:
    """Scenes 0 … `scenes`-1 of `seed`, rendered `side` pixels square, with their captions."""
    for index in range(scenes):
        image, caption = scene(seed, index, side)
        yield SourceRecord(f"world:scene-{index:06d}", caption, data=encode_png(image))
