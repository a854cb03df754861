"""Known-answer edits over generated scenes: the world's test cases (DESIGN §10).

An edit changes one object of a scene graph (recolour it, remove it, or turn it into another
shape), so its target is rendered, not guessed, and the pixels it may change are known exactly.
The instruction names the object by colour and shape, which no two objects of a scene share,
and is worded so that the template writer's own rule (`apply_instruction`) turns the source's
caption into the target's: t_e is the target scene's caption, checked on every edit.

The hard case of the paper's Figure 6 is a *distractor*: another object with the same shape in
another colour, or the same colour in another shape. A test scene is asked for with or without
one; with one, a distractor sits in a cell next to the edited object.

Test scenes are drawn from the RNG namespace "regionedit-world-test:{seed}:{index}", and
training scenes (`scenes.scene_graph`) from "regionedit-scene:{seed}:{index}": the two streams
never share a draw, so a test scene is no training scene replayed, whatever the seeds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image

from components.data.scenes import DRAWN_SHAPES, OBJECT_COLOURS, Scene, draw_scene
from components.describe.template import apply_instruction

KINDS = ("recolour", "remove", "reshape")
RNG = "regionedit-world-{namespace}:{seed}:{index}"  # namespaces: test; zoo-check (the zoo's)
# training's: "regionedit-scene:{seed}:{index}"
TEST_RNG = RNG.format(namespace="test", seed="{seed}", index="{index}")
TEST_OBJECTS = (2, 3)  # objects in a test scene: enough for a distractor, few enough to see


@dataclass(frozen=True)
class WorldEdit:
    """One edit with its known answer: object `index` of `source` edited into `target`."""

    source: Scene
    target: Scene
    kind: str  # one of KINDS
    index: int  # the edited object, in `source`'s objects (and `target`'s, unless removed)
    t_ins: str
    distractor: bool  # another object of the source shares the edited one's colour or shape

    def __post_init__(self) -> None:
        t_e = apply_instruction(self.t_o, self.t_ins)
        if t_e != self.t_e:  # the template's rules and the scene's caption must agree
            raise ValueError(
                f"{self.t_ins!r} on {self.t_o!r}: the template writes {t_e!r}, "
                f"the target scene says {self.t_e!r}"
            )

    @property
    def t_o(self) -> str:
        return self.source.caption

    @property
    def t_e(self) -> str:
        return self.target.caption

    def source_image(self, side: int) -> Image.Image:
        return self.source.render(side)

    def target_image(self, side: int) -> Image.Image:
        return self.target.render(side)

    def region(self, side: int) -> np.ndarray:
        """The ground-truth edit region (boolean, side x side): the edited object's pixels before
        and after. For recolour and remove these are exactly the pixels that differ; for reshape
        they also hold the overlap of the old and new shapes, which keeps its colour but is part
        of the object being re-made."""
        region = self.source.mask(self.index, side)
        if self.kind != "remove":
            region |= self.target.mask(self.index, side)
        return region


def edit_scene(scene: Scene, index: int, kind: str, rng: random.Random) -> WorldEdit:
    """An edit of `kind` on object `index`: a new colour or a new shape drawn from `options`."""
    edited = scene.objects[index]
    name = f"{edited.colour} {edited.shape}"
    if kind not in KINDS:
        raise ValueError(f"edit kind {kind!r}: expected one of {KINDS}")
    if kind == "remove":
        target, t_ins = scene.without(index), f"remove the {name}"
    else:
        choices = options(scene, index, kind)
        if not choices:
            raise ValueError(f"no {kind} of the {name} in {scene.caption!r}: every option is taken")
        new = rng.choice(choices)
        if kind == "recolour":
            target, t_ins = scene.with_object(index, colour=new), f"make the {name} {new}"
        else:
            target, t_ins = scene.with_object(index, shape=new), f"turn the {name} into a {new}"
    return WorldEdit(scene, target, kind, index, t_ins, bool(distractors(scene, index)))


def options(scene: Scene, index: int, kind: str) -> list[str]:
    """What object `index` may become by a `kind` edit: a colour or shape of the words scenes
    are drawn from, never its own and never a colour and shape another object already has
    (no two objects alike, so every instruction names one object). Removal has one option."""
    edited = scene.objects[index]
    taken = {(o.colour, o.shape) for o in scene.objects}
    if kind == "recolour":
        return [c for c in OBJECT_COLOURS if (c, edited.shape) not in taken]
    if kind == "reshape":
        return [s for s in DRAWN_SHAPES if (edited.colour, s) not in taken]
    return ["nothing"] if len(scene.objects) > 1 else []


def distractors(scene: Scene, index: int) -> list[int]:
    """The other objects that share object `index`'s colour or its shape."""
    edited = scene.objects[index]
    return [
        i
        for i, o in enumerate(scene.objects)
        if i != index and (o.colour == edited.colour or o.shape == edited.shape)
    ]


def beside(cell: int, other: int) -> bool:
    """Whether two cells of the 3x3 grid touch, by a side or a corner."""
    return cell != other and max(abs(cell // 3 - other // 3), abs(cell % 3 - other % 3)) == 1


def world_session(
    seed: int, index: int, kind: str, distractor: bool, turns: int = 1, namespace: str = "test"
) -> tuple[WorldEdit, ...]:
    """Test session `index` of `seed`: a scene of 2-3 objects and `turns` chained edits.

    Turn 1 is of `kind`, on a scene drawn until it has a distractor beside the edited object
    (`distractor`) or no similar object at all (not `distractor`). Each later turn edits the
    previous turn's target: a random object and kind (never removing the last object), its
    distractor flag as the scene has it.
    """
    rng = random.Random(RNG.format(namespace=namespace, seed=seed, index=index))
    scene, edited = _test_scene(rng, kind, distractor)
    session = [edit_scene(scene, edited, kind, rng)]
    while len(session) < turns:
        scene = session[-1].target
        possible = [
            (index, kind)
            for index in range(len(scene.objects))
            for kind in KINDS
            if options(scene, index, kind)
        ]
        session.append(edit_scene(scene, *rng.choice(possible), rng))
    return tuple(session)


def held_out_edit(seed: int, index: int, namespace: str) -> WorldEdit:
    """Edit `index` of a held-out set of one-turn sessions: the kinds in turn, every other one
    with a distractor (the models' checks and the loss landscape)."""
    kind, distractor = KINDS[index % len(KINDS)], index % 2 == 0
    return world_session(seed, index, kind, distractor, namespace=namespace)[0]


def _test_scene(rng: random.Random, kind: str, distractor: bool) -> tuple[Scene, int]:
    """A scene and the object to edit, drawn until a `kind` edit of it is possible and the
    distractor condition holds."""
    while True:
        scene = draw_scene(rng, rng.choice(TEST_OBJECTS))
        edited = rng.randrange(len(scene.objects))
        if not options(scene, edited, kind):
            continue
        similar = distractors(scene, edited)
        cell = scene.objects[edited].cell
        if distractor and any(beside(cell, scene.objects[i].cell) for i in similar):
            return scene, edited
        if not distractor and not similar:
            return scene, edited
