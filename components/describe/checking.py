"""Strict checking of model answers: one JSON object with the asked-for string fields, in bounds.

Nothing here raises for a bad answer: every check returns the cleaned value or a Rejection
that names the reason, so a batch never fails because one model answer was garbage.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class Reason(StrEnum):
    """Why a sample was not described. Every rejection carries one of these and a detail."""

    NOT_JSON = "not_json"  # no JSON object anywhere in the answer
    WRONG_KEYS = "wrong_keys"  # the first JSON object lacks a field, or a field is not a string
    EMPTY = "empty"  # a field is empty or only whitespace
    TOO_SHORT = "too_short"  # a field under describe.min_chars
    TOO_LONG = "too_long"  # a field over describe.max_chars
    UNCHANGED = "unchanged"  # the target description says the same as the original
    COPIES_CAPTION = "copies_caption"  # the instruction repeats a description
    UNSUPPORTED_INSTRUCTION = "unsupported_instruction"  # template backend: no known form
    NOT_APPLICABLE = "not_applicable"  # template backend: the description does not fit it
    NO_CAPTION = "no_caption"  # no usable caption, and the backend cannot caption images
    UNREADABLE_IMAGE = "unreadable_image"  # not in its shard (a truncated tar), or undecodable


@dataclass(frozen=True)
class Rejection:
    reason: Reason
    detail: str


class Edit(NamedTuple):
    instruction: str  # t_ins
    target: str  # t_e


@dataclass(frozen=True)
class Bounds:
    """Length bounds, in characters, for every text field."""

    min_chars: int
    max_chars: int


Answer = str | Rejection  # a model's raw text, or a backend's own refusal with its reason


def parse_json_object(text: str, keys: tuple[str, ...]) -> dict[str, str] | Rejection:
    """The first JSON object in `text` (code fences and text around it are tolerated),
    reduced to `keys`, each of which must be present and a string. Other keys are ignored."""
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"\{", text)):
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if not isinstance(value, dict):
            continue
        wrong = [k for k in keys if not isinstance(value.get(k), str)]
        if wrong:
            return Rejection(
                Reason.WRONG_KEYS,
                f"expected string fields {', '.join(keys)}; {', '.join(wrong)} missing or not "
                f"a string (keys: {', '.join(map(str, value)) or 'none'})",
            )
        return {k: clean(value[k]) for k in keys}
    return Rejection(Reason.NOT_JSON, "no JSON object in the answer")


def clean(text: str) -> str:
    """Whitespace collapsed, as `prepare` does for captions."""
    return " ".join(text.split())


def check_text(name: str, text: str, bounds: Bounds) -> Rejection | None:
    if not text:
        return Rejection(Reason.EMPTY, f"{name} is empty")
    if len(text) < bounds.min_chars:
        return Rejection(Reason.TOO_SHORT, f"{name} has {len(text)} < {bounds.min_chars} chars")
    if len(text) > bounds.max_chars:
        return Rejection(Reason.TOO_LONG, f"{name} has {len(text)} > {bounds.max_chars} chars")
    return None


def check_caption(answer: Answer, bounds: Bounds) -> str | Rejection:
    """t_o from a captioning answer `{"description": ...}`."""
    keys = ("description",)
    fields = answer if isinstance(answer, Rejection) else parse_json_object(answer, keys)
    if isinstance(fields, Rejection):
        return fields
    return check_text("description", fields["description"], bounds) or fields["description"]


def check_edit(t_o: str, answer: Answer, bounds: Bounds) -> Edit | Rejection:
    """(t_ins, t_e) from `{"instruction": ..., "target_description": ...}` written for `t_o`."""
    keys = ("instruction", "target_description")
    fields = answer if isinstance(answer, Rejection) else parse_json_object(answer, keys)
    if isinstance(fields, Rejection):
        return fields
    edit = Edit(fields["instruction"], fields["target_description"])
    for name, text in zip(keys, edit, strict=True):
        if problem := check_text(name, text, bounds):
            return problem
    if same(edit.target, t_o):
        return Rejection(Reason.UNCHANGED, "target_description repeats the original description")
    if same(edit.instruction, t_o) or same(edit.instruction, edit.target):
        return Rejection(Reason.COPIES_CAPTION, "instruction repeats a description")
    return edit


def check_target(t_o: str, answer: Answer, bounds: Bounds) -> str | Rejection:
    """t_e from `{"target_description": ...}` written for (t_o, t_ins)."""
    keys = ("target_description",)
    fields = answer if isinstance(answer, Rejection) else parse_json_object(answer, keys)
    if isinstance(fields, Rejection):
        return fields
    target = fields["target_description"]
    if problem := check_text("target_description", target, bounds):
        return problem
    if same(target, t_o):
        return Rejection(Reason.UNCHANGED, "target_description repeats the original description")
    return target


def same(a: str, b: str) -> bool:
    """Equal up to case, punctuation and spacing."""
    return _words(a) == _words(b)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())
