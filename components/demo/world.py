"""A world scene for the page: a test session of `regionedit world`, its caption, the
instructions it has a known answer for, and an edit's verdict against that answer."""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image

from components.evaluation.metrics import KnownAnswer, edit_success, region_overlap
from components.world.edits import KINDS, WorldEdit, edit_scene, options
from components.world.testsets import world_sessions


@dataclass(frozen=True)
class WorldScene:
    """Session `index` of the world test set of `seed`, rendered at `side` pixels."""

    seed: int
    index: int
    side: int
    edits: tuple[WorldEdit, ...]  # the session's own first edit, then one per object and kind

    @property
    def caption(self) -> str:
        return self.edits[0].t_o

    @property
    def image(self) -> Image.Image:
        return self.edits[0].source_image(self.side)

    @property
    def instructions(self) -> list[str]:
        return [edit.t_ins for edit in self.edits]

    def known_edit(self, instruction: str) -> WorldEdit | None:
        """The edit `instruction` asks for, if it is one the scene knows the answer to."""
        wanted = " ".join(instruction.lower().split())
        return next((edit for edit in self.edits if edit.t_ins == wanted), None)


@dataclass(frozen=True)
class Verdict:
    """An edit of a world scene judged as the benchmarks judge it."""

    success: float  # edit_success: 1.0 when the edit is the rendered target
    iou: float  # the fully repainted pixels against the ground-truth region
    truth: Image.Image  # "L", the ground-truth region


def world_scene(seed: int, count: int, side: int, index: int) -> WorldScene:
    """Session `index` (modulo `count`) of the test set `regionedit world` writes."""
    index %= count
    first = world_sessions(seed, index + 1)[index][0]
    rng = random.Random(f"regionedit-demo:{seed}:{index}")  # the other edits' new colour/shape
    others = [
        edit_scene(first.source, obj, kind, rng)
        for obj in range(len(first.source.objects))
        for kind in KINDS
        if options(first.source, obj, kind)
    ]
    unique = {first.t_ins: first} | {edit.t_ins: edit for edit in others}
    return WorldScene(seed, index, side, tuple(unique.values()))


def verdict(
    scene: WorldScene, edit: WorldEdit, edited: Image.Image, repainted: Image.Image
) -> Verdict:
    """Edit success and IoU of `edited` (and its repainted region) against `edit`'s answer."""
    truth = Image.fromarray(edit.region(scene.side)).convert("L")
    answer = KnownAnswer(scene.image, truth, edit.target_image(scene.side))
    return Verdict(edit_success(edited, answer), region_overlap(repainted, truth).iou, truth)
