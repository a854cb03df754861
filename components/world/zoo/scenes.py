"""What the world's models train on: rendered scenes, their captions, each object's mask, and
captions that are wrong in one attribute (the hard negatives that teach binding).

The scenes come from their own seed namespace, apart from the method's training scenes
(`prepare --source world`) and the test sets (components/world).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from components.data.scenes import CELLS, DRAWN_SHAPES, OBJECT_COLOURS, Scene, draw_scene

MAX_OBJECTS = 3


@dataclass
class ScenePool:
    """`count` scenes rendered at `side`: uint8 pixels (N, side, side, 3), captions, and the
    exact mask of every object (N, MAX_OBJECTS, side, side; empty for absent objects)."""

    scenes: list[Scene]
    pixels: np.ndarray
    masks: np.ndarray

    @classmethod
    def draw(cls, seed: int, count: int, side: int, namespace: str) -> ScenePool:
        scenes, pixels = [], np.empty((count, side, side, 3), np.uint8)
        masks = np.zeros((count, MAX_OBJECTS, side, side), bool)
        for i in range(count):
            rng = random.Random(f"regionedit-world-{namespace}:{seed}:{i}")
            scene = draw_scene(rng, rng.randint(1, MAX_OBJECTS))
            scenes.append(scene)
            pixels[i] = np.asarray(scene.render(side))
            for k in range(len(scene.objects)):
                masks[i, k] = scene.mask(k, side)
        return cls(scenes, pixels, masks)

    def __len__(self) -> int:
        return len(self.scenes)

    def images(self, index: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1], (B, 3, side, side)."""
        return torch.from_numpy(self.pixels[index.numpy()]).permute(0, 3, 1, 2).float() / 255

    def captions(self, index: torch.Tensor) -> list[str]:
        return [self.scenes[i].caption for i in index.tolist()]


def swapped_captions(scene: Scene, rng: random.Random, count: int) -> list[str]:
    """`count` captions of scenes that differ from `scene` in one attribute: two objects'
    colours swapped, one object's colour, shape or place changed. They share every word with
    the true caption but one binding, so only a model that binds colour to shape and place
    tells them apart."""
    true, found = scene.caption, []
    for _ in range(50 * count):
        if len(found) == count:
            break
        caption = _swap(scene, rng).caption
        if caption != true and caption not in found:
            found.append(caption)
    return found


def _swap(scene: Scene, rng: random.Random) -> Scene:
    index = rng.randrange(len(scene.objects))
    obj = scene.objects[index]
    kind = rng.choice(("swap", "colour", "shape", "place"))
    if kind == "swap" and len(scene.objects) > 1:
        other = rng.choice([k for k in range(len(scene.objects)) if k != index])
        swapped = scene.with_object(index, colour=scene.objects[other].colour)
        return swapped.with_object(other, colour=obj.colour)
    if kind == "shape":
        shapes = [s for s in DRAWN_SHAPES if s != obj.shape]
        return scene.with_object(index, shape=rng.choice(shapes))
    if kind == "place":
        free = [c for c in range(CELLS) if c not in {o.cell for o in scene.objects}]
        return scene.with_object(index, cell=rng.choice(free))
    colours = [c for c in OBJECT_COLOURS if c != obj.colour]
    return scene.with_object(index, colour=rng.choice(colours))
