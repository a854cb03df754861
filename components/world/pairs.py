"""Editing pairs of the world's training scenes: what an editor trained on pairs learns from.

InstructPix2Pix, MagicBrush and UltraEdit learn from (source, instruction, target) triples.
The world renders such triples exactly: each training scene (the same scenes the method sees
as image + caption, `components/data/world_source.py`) gets one edit of one of its objects
(recolour, remove or reshape, `components/world/edits.py`), its instruction and its rendered
target. These pairs train the pair-trained comparison only (issue: trained without editing
pairs against trained on them); the method never reads them.

The edit of scene `index` is drawn from the RNG namespace "regionedit-world-pairs:{seed}:{index}",
so the pair of a scene is the same at every scale and in every run.
"""

from __future__ import annotations

import random
import re

from components.data.scenes import scene_graph
from components.world.edits import KINDS, WorldEdit, edit_scene, options

PAIR_RNG = "regionedit-world-pairs:{seed}:{index}"
SOURCE = re.compile(r"world:scene-(\d+)")  # components/data/world_source.py's record ids


def editing_pair(seed: int, index: int) -> WorldEdit:
    """Training scene `index` of `seed` with one edit: an object and a kind drawn among those
    the scene allows (a scene of one object is never emptied)."""
    scene = scene_graph(seed, index)
    rng = random.Random(PAIR_RNG.format(seed=seed, index=index))
    objects = range(len(scene.objects))
    possible = [(obj, kind) for obj in objects for kind in KINDS if options(scene, obj, kind)]
    return edit_scene(scene, *rng.choice(possible), rng)


def scene_index(source: str) -> int:
    """The scene a prepared sample was rendered from, by its source id (`world:scene-000123`)."""
    found = SOURCE.fullmatch(source)
    if found is None:
        raise ValueError(
            f"prepared sample {source!r} is not a world scene: editing pairs can only be rendered "
            "for prepare.source: world (with real data, compare against published editors)"
        )
    return int(found[1])
