"""The `template` writer: editing instructions and target descriptions from a caption, by rule.

Four operations over the caption's nouns: recolour, replace, remove, add. `apply_instruction`
is the one place an instruction changes a description: `write_edit` picks an instruction among
those a caption allows and applies it, and inference applies a user's instruction the same way.
Deterministic in (seed, caption); no model, no download.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from components.describe.checking import Edit, Reason, Rejection, clean
from components.describe.vocabulary import (
    ADDITIONS,
    COLOURS,
    NOT_REMOVABLE,
    NOUNS,
    PEOPLE,
    PLACE_NEUTRAL,
    PLACES,
    PLURALS,
    REPLACEMENTS,
    SCENE_SHAPES,
    SCENE_SIZES,
)
from components.describe.vocabulary import SCENE_COLOURS as NEW_COLOURS

VERSION = "template-v1"  # change it when a rule changes: it is part of every cache key


def _alternatives(words: Iterable[str]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))  # longest first: "orange" before "or…"


C, N = _alternatives(COLOURS), _alternatives(NOUNS)
REF = rf"the (?:(?P<old>{C}) )?(?P<noun>[a-z]+)"
RECOLOUR = re.compile(rf"(?:make|turn|colou?r|paint|change) {REF} (?:to |into )?(?P<new>{C})")
REPLACE = re.compile(rf"(?:replace|swap) {REF} (?:with|for|by) (?P<new>[a-z ]+)")
TURN_INTO = re.compile(rf"(?:turn|change|transform) {REF} into (?P<new>[a-z ]+)")
REMOVE = re.compile(rf"(?:remove|delete|erase|take away|take out|get rid of) {REF}")
GIVE = re.compile(rf"give {REF} (?P<thing>[a-z ]+)")
ADD = re.compile(
    r"add (?P<thing>[a-z ]+?)"
    r"(?: (?P<where>(?:next to|beside|behind|in front of|on|at|in|to|above|below|under|near) "
    r"[a-z ]+))?"
)
SCENE = re.compile(rf"(?P<objects>.+)(?P<suffix> on an? (?P<background>{C}) background)")
SCENE_OBJECT = re.compile(
    rf"an? (?:(?P<size>{_alternatives(SCENE_SIZES)}) )?(?:(?P<colour>{C}) )?"
    rf"(?P<shape>{_alternatives(SCENE_SHAPES)})(?: at the [a-z ]+)?"
)
FORMS = (
    "make the [colour] NOUN COLOUR",
    "replace the [colour] NOUN with a THING",
    "turn the [colour] NOUN into a THING",
    "remove the [colour] NOUN",
    "add a THING [next to/at/on … PLACE]",
    "give the [colour] NOUN a THING",
)


@dataclass(frozen=True)
class Scene:
    """A generated scene's caption: object phrases joined by commas and 'and', then a suffix."""

    objects: list[re.Match[str]]
    suffix: str  # " on a green background"
    background: str

    def render(self, phrases: list[str]) -> str:
        if not phrases:
            return f"a plain {self.background} background"
        joined = phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} and {phrases[-1]}"
        return joined + self.suffix


def parse_scene(caption: str) -> Scene | None:
    """The scene structure of `caption`, or None if it is not a generated scene's caption."""
    if not (whole := SCENE.fullmatch(caption)):
        return None
    head, _, last = whole["objects"].rpartition(" and ")
    objects = [SCENE_OBJECT.fullmatch(p) for p in [*(head.split(", ") if head else []), last]]
    if not all(objects):
        return None
    return Scene(objects, whole["suffix"], whole["background"])


def apply_instruction(t_o: str, t_ins: str) -> str | Rejection:
    """t_e: the description `t_o` after the edit `t_ins`, or why the rules cannot apply it."""
    t_o = clean(t_o)
    instruction = re.sub(r"^please ", "", clean(t_ins).lower().rstrip(".!"))
    for pattern, apply in RULES:
        if match := pattern.fullmatch(instruction):
            return apply(t_o, match)
    return Rejection(
        Reason.UNSUPPORTED_INSTRUCTION,
        f"the template backend understands only: {'; '.join(FORMS)}; got {t_ins!r}",
    )


def write_edit(t_o: str, seed: int) -> Edit:
    """An instruction for `t_o` and its target description: one operation picked at random
    (seeded by `seed` and the caption), then one of that operation's candidates."""
    rng = random.Random(f"regionedit-template:{seed}:{t_o}")
    by_operation = _candidates(clean(t_o), rng)
    instructions = by_operation[rng.choice(sorted(by_operation))]
    return rng.choice(instructions)


def _recolour(t_o: str, m: re.Match[str]) -> str | Rejection:
    found = _find(t_o, m["noun"], m["old"])
    if isinstance(found, Rejection):
        return found
    return _substitute(t_o, found.start(), found.end(), f"{m['new']} {m['noun']}")


def _replace(t_o: str, m: re.Match[str]) -> str | Rejection:
    found = _find(t_o, m["noun"], m["old"])
    if isinstance(found, Rejection):
        return found
    new = re.sub(r"^(?:an?|the|some) ", "", m["new"])
    keep_colour = found["colour"] and new.split()[0] not in COLOURS
    return _substitute(
        t_o, found.start(), found.end(), f"{found['colour']} {new}" if keep_colour else new
    )


def _remove(t_o: str, m: re.Match[str]) -> str | Rejection:
    if scene := parse_scene(t_o):
        hits = [o for o in scene.objects if _names(o, m["noun"], m["old"])]
        if len(hits) == 1:
            return scene.render([o[0] for o in scene.objects if o is not hits[0]])
    phrase = rf",? (?:with|holding) (?:(?:an?|the|its|some) )?(?:[a-z]+ )?{m['noun']}\b"
    hits = [h for h in re.finditer(phrase, t_o) if not m["old"] or m["old"] in h[0].split()]
    if len(hits) != 1:
        return Rejection(
            Reason.NOT_APPLICABLE,
            f"cannot remove {_ref(m)!r}: the template backend removes one object of a "
            "generated scene, or one 'with …' / 'holding …' phrase of the description",
        )
    return clean(t_o[: hits[0].start()] + t_o[hits[0].end() :])


def _add(t_o: str, m: re.Match[str]) -> str:
    where = re.sub(r"^to ", "on ", m["where"] or "")
    if scene := parse_scene(t_o):
        return scene.render([*(o[0] for o in scene.objects), clean(f"{m['thing']} {where}")])
    return clean(f"{t_o.rstrip(' .')}, with {m['thing']} {where}")


def _give(t_o: str, m: re.Match[str]) -> str | Rejection:
    found = _find(t_o, m["noun"], m["old"])
    if isinstance(found, Rejection):
        return found
    return f"{t_o.rstrip(' .')} with {m['thing']}"


RULES: tuple[tuple[re.Pattern[str], Callable[[str, re.Match[str]], str | Rejection]], ...] = (
    (RECOLOUR, _recolour),
    (REPLACE, _replace),
    (TURN_INTO, _replace),
    (REMOVE, _remove),
    (GIVE, _give),
    (ADD, _add),
)


def _find(t_o: str, noun: str, colour: str | None) -> re.Match[str] | Rejection:
    """The one mention of `[colour] noun` in `t_o`."""
    colour_part = re.escape(colour) if colour else f"(?:{C})"
    hits = list(re.finditer(rf"\b(?:(?P<colour>{colour_part}) )?{re.escape(noun)}\b", t_o))
    if colour:
        hits = [h for h in hits if h["colour"] == colour]
    name = f"{colour} {noun}" if colour else noun
    if not hits:
        return Rejection(Reason.NOT_APPLICABLE, f"the description does not mention {name!r}")
    if len(hits) > 1:
        return Rejection(
            Reason.NOT_APPLICABLE,
            f"the description mentions {name!r} {len(hits)} times: name it by its colour",
        )
    return hits[0]


def _names(scene_object: re.Match[str], noun: str, colour: str | None) -> bool:
    return scene_object["shape"] == noun and colour in (None, scene_object["colour"])


def _ref(m: re.Match[str]) -> str:
    return f"{m['old']} {m['noun']}" if m["old"] else m["noun"]


def _substitute(text: str, start: int, end: int, new: str) -> str:
    """`text` with [start, end) replaced by `new`, and a/an before it agreeing with `new`."""
    article = "an " if new[:1] in "aeiou" else "a "
    before = re.sub(r"\b([Aa])n? $", lambda a: a[1] + article[1:], text[:start])
    return clean(before + new + text[end:])


def _candidates(t_o: str, rng: random.Random) -> dict[str, list[Edit]]:
    """Every instruction the rules can apply to `t_o`, by operation, with its target."""
    scene = parse_scene(t_o)
    background = scene.background if scene else None
    instructions: dict[str, list[str]] = {"add": [_add_instruction(t_o, scene, rng)]}
    for colour, noun, article_before in _mentions(t_o):
        ref = f"{colour} {noun}" if colour else noun
        if (colour or article_before) and noun not in PEOPLE:
            new = rng.choice([c for c in NEW_COLOURS if c not in (colour, background)])
            instructions.setdefault("recolour", []).append(f"make the {ref} {new}")
        if noun in REPLACEMENTS:
            new = rng.choice(REPLACEMENTS[noun])
            thing = new if noun in PLURALS else f"{_article(new)} {new}"
            instructions.setdefault("replace", []).append(f"replace the {ref} with {thing}")
        if noun not in NOT_REMOVABLE:
            instructions.setdefault("remove", []).append(f"remove the {ref}")
    candidates: dict[str, list[Edit]] = {}
    for operation, texts in instructions.items():
        for text in texts:
            target = apply_instruction(t_o, text)
            if not isinstance(target, Rejection):
                candidates.setdefault(operation, []).append(Edit(text, target))
    return candidates


def _mentions(t_o: str) -> list[tuple[str | None, str, bool]]:
    """(colour, noun, follows an article) for each known noun that an instruction can name
    unambiguously, by itself or with its colour, in order of appearance."""
    mentions = []
    for m in re.finditer(rf"\b(?:(?P<colour>{C}) )?(?P<noun>{N})\b", t_o):
        colour, noun = m["colour"], m["noun"]
        if _count(rf"\b{noun}\b", t_o) == 1 or (
            colour and _count(rf"\b{colour} {noun}\b", t_o) == 1
        ):
            after_article = re.search(r"\b(?:an?|the) $", t_o[: m.start()]) is not None
            mentions.append((colour, noun, after_article))
    return mentions


def _add_instruction(t_o: str, scene: Scene | None, rng: random.Random) -> str:
    if scene:
        used = {o[0].partition(" at the ")[2] for o in scene.objects}
        place = rng.choice([p for p in PLACES if p not in used] or list(PLACES))
        size = rng.choice(SCENE_SIZES)
        colour = rng.choice([c for c in NEW_COLOURS if c != scene.background])
        return f"add {_article(size)} {size} {colour} {rng.choice(SCENE_SHAPES)} at the {place}"
    colour = rng.choice(NEW_COLOURS)
    thing = f"{_article(colour)} {colour} {rng.choice(ADDITIONS)}"
    anchors = [(c, n) for c, n, _ in _mentions(t_o) if n not in PLACE_NEUTRAL]
    if not anchors:
        return f"add {thing}"
    colour, noun = rng.choice(anchors)
    return f"add {thing} next to the {f'{colour} {noun}' if colour else noun}"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _count(pattern: str, text: str) -> int:
    return len(re.findall(pattern, text))
