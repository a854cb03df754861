"""The template writer's words: colours, sizes, shapes and places of the generated scenes, and
the nouns of the demo captions it can edit. Small on purpose: no NLP model, no download."""

from __future__ import annotations

from components.data.scenes import COLOURS, SHAPES, SIZES

SCENE_COLOURS = tuple(COLOURS)  # also the colours the writer recolours to
COLOURS = (*SCENE_COLOURS, "gold", "silver")
SCENE_SIZES = tuple(SIZES)
SCENE_SHAPES = SHAPES
PLACES = (
    "top left", "top centre", "top right",
    "middle left", "centre", "middle right",
    "bottom left", "bottom centre", "bottom right",
)  # fmt: skip

# noun -> what it may be replaced with (plural nouns by plurals)
REPLACEMENTS: dict[str, tuple[str, ...]] = {
    **{shape: tuple(s for s in SHAPES if s != shape) for shape in SHAPES},
    "cat": ("dog", "fox", "rabbit"),
    "dog": ("cat", "fox"),
    "horse": ("cow", "zebra", "deer"),
    "astronaut": ("diver", "firefighter"),
    "man": ("woman", "child"),
    "cup": ("mug", "glass", "bowl"),
    "spoon": ("fork",),
    "saucer": ("plate",),
    "table": ("desk", "bench"),
    "helmet": ("hat", "ball"),
    "flag": ("banner", "painting"),
    "camera": ("telescope", "lamp"),
    "coat": ("jacket", "raincoat"),
    "clock": ("mirror", "plate"),
    "motorcycle": ("bicycle", "scooter", "car"),
    "rocket": ("airplane", "lighthouse", "tower"),
    "tripod": ("stool",),
    "moon": ("planet",),
    "cell": ("bubble",),
    "book": ("notebook", "magazine"),
    "coins": ("buttons", "shells"),
    "stones": ("shells", "marbles"),
    "posters": ("paintings", "photographs"),
}
# nouns that can be recoloured or named in an instruction, beyond the replaceable ones
NOUNS = frozenset(REPLACEMENTS) | {"eyes", "sky", "background", "spacesuit", "bricks", "wall"}
PLURALS = frozenset({"coins", "stones", "posters", "eyes", "bricks"})
NOT_REMOVABLE = frozenset({"eyes", "sky", "background", "wall"})  # parts of the scene itself
PEOPLE = frozenset({"man", "astronaut"})  # never recoloured: "make the man orange" is no edit
PLACE_NEUTRAL = frozenset({"sky", "background", "wall", "eyes", "spacesuit", "bricks"})
ADDITIONS = ("balloon", "hat", "bird", "butterfly", "flower", "ball")  # added to photographs
