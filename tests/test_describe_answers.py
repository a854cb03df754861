"""Strict answer checking and the template writer: parsing, checks, rules, determinism."""

from __future__ import annotations

import csv

import pytest

from components.config import DescribeConfig
from components.data.demo import CAPTIONS
from components.data.demo_edits import DEMO_EDITS
from components.data.scenes import scene
from components.describe.backends import TemplateBackend
from components.describe.checking import (
    Bounds,
    Edit,
    Reason,
    Rejection,
    check_caption,
    check_edit,
    parse_json_object,
)
from components.describe.describer import Describer
from components.describe.errors import DescribeError
from components.describe.template import apply_instruction, write_edit

BOUNDS = Bounds(min_chars=3, max_chars=120)
KEYS = ("instruction", "target_description")
GOOD = {"instruction": "make the cat black", "target_description": "a black cat"}
SCENE = (
    "a small red circle at the top left and a large blue star at the centre on a green background"
)


@pytest.mark.parametrize(
    "answer",
    [
        '{"instruction": "make the cat black", "target_description": "a black cat"}',
        '```json\n{"instruction": "make the cat black", "target_description": "a black cat"}\n```',
        'Sure! Here it is: {"instruction": "make the cat black", "target_description": "a black '
        'cat"} Hope this helps {"instruction": "other"}',
        '{oops} [1, 2] {"target_description": "a black cat", "instruction": "make the cat black",'
        ' "note": "extra keys are ignored"}',
        '{"instruction": "  make the cat\\n black ", "target_description": "a black cat"}',
    ],
)
def test_the_first_json_object_is_the_answer(answer):
    assert parse_json_object(answer, KEYS) == GOOD


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("make the cat black", Reason.NOT_JSON),
        (
            "{'instruction': 'make the cat black', 'target_description': 'a black cat'}",
            Reason.NOT_JSON,
        ),
        ('{"instruction": "make the cat black", "target_description": "a black', Reason.NOT_JSON),
        ('{"instr": "make the cat black", "target": "a black cat"}', Reason.WRONG_KEYS),
        ('{"instruction": ["make the cat black"], "target_description": "a"}', Reason.WRONG_KEYS),
        (
            '{"instruction": "make the cat black"} {"target_description": "a black cat"}',
            Reason.WRONG_KEYS,
        ),
    ],
)
def test_unusable_answers_are_rejected_with_their_reason(answer, reason):
    rejection = parse_json_object(answer, KEYS)
    assert isinstance(rejection, Rejection) and rejection.reason == reason and rejection.detail


def edit_answer(instruction: str, target: str) -> str:
    return f'{{"instruction": "{instruction}", "target_description": "{target}"}}'


@pytest.mark.parametrize(
    ("instruction", "target", "reason"),
    [
        ("", "a black cat", Reason.EMPTY),
        ("make the cat black", "   ", Reason.EMPTY),
        ("go", "a black cat", Reason.TOO_SHORT),
        ("make the cat black", "a black cat " * 20, Reason.TOO_LONG),
        ("make the cat black", "A white cat, on a sofa.", Reason.UNCHANGED),
        ("a white cat on a sofa", "a black cat on a sofa", Reason.COPIES_CAPTION),
        ("A black cat on a sofa!", "a black cat on a sofa", Reason.COPIES_CAPTION),
    ],
)
def test_edit_checks(instruction, target, reason):
    result = check_edit("a white cat on a sofa", edit_answer(instruction, target), BOUNDS)
    assert isinstance(result, Rejection) and result.reason == reason


def test_a_good_edit_passes_cleaned():
    result = check_edit("a white cat", edit_answer("make the cat  black", "a black cat"), BOUNDS)
    assert result == Edit("make the cat black", "a black cat")
    assert check_caption('{"description": "a white cat"}', BOUNDS) == "a white cat"
    assert check_caption('{"caption": "a white cat"}', BOUNDS).reason == Reason.WRONG_KEYS


@pytest.mark.parametrize(
    ("instruction", "target"),
    [
        ("make the red circle yellow", SCENE.replace("red circle", "yellow circle")),
        ("make the red circle orange", SCENE.replace("a small red", "a small orange")),
        ("remove the blue star", "a small red circle at the top left on a green background"),
        ("replace the blue star with a square", SCENE.replace("blue star", "blue square")),
        (
            "add a small yellow square at the bottom right",
            "a small red circle at the top left, a large blue star at the centre and a small "
            "yellow square at the bottom right on a green background",
        ),
        ("make the background pink", SCENE.replace("green background", "pink background")),
    ],
)
def test_template_rules_on_a_generated_scene(instruction, target):
    assert apply_instruction(SCENE, instruction) == target


@pytest.mark.parametrize(("photo", "t_o", "t_ins", "t_e"), DEMO_EDITS[1:3])
def test_template_rules_reproduce_hand_written_demo_edits(photo, t_o, t_ins, t_e):
    assert apply_instruction(t_o, t_ins) == t_e


def test_template_rules_on_photo_captions():
    t_o, t_ins = DEMO_EDITS[0][1:3]  # "turn the cat into a dog"
    assert apply_instruction(t_o, t_ins) == "an orange tabby dog lying down"
    assert apply_instruction("a cat on a sofa", "replace the cat with a dog") == "a dog on a sofa"
    assert apply_instruction("a cat on a sofa", "Turn the cat into an owl.") == "an owl on a sofa"
    assert (
        apply_instruction("a cup of coffee with a spoon on a red table", "remove the spoon")
        == "a cup of coffee on a red table"
    )


@pytest.mark.parametrize(
    ("t_o", "t_ins", "reason"),
    [
        ("a cat on a sofa", "dance wildly", Reason.UNSUPPORTED_INSTRUCTION),
        ("a cat on a sofa", "make the dog blue", Reason.NOT_APPLICABLE),
        ("a cat on a sofa", "remove the sofa", Reason.NOT_APPLICABLE),
        (SCENE.replace("blue star", "red circle"), "make the circle white", Reason.NOT_APPLICABLE),
    ],
)
def test_template_rules_refuse_what_they_cannot_apply(t_o, t_ins, reason):
    rejection = apply_instruction(t_o, t_ins)
    assert isinstance(rejection, Rejection) and rejection.reason == reason


def captions() -> list[str]:
    with CAPTIONS.open(encoding="utf-8", newline="") as handle:
        photos = [row["caption"] for row in csv.DictReader(handle)]
    return photos + [scene(0, i)[1] for i in range(40)]


def test_template_writes_checked_edits_that_its_own_rules_reproduce():
    operations = set()
    for t_o in captions():
        edit = write_edit(t_o, seed=0)
        assert check_edit(t_o, edit_answer(*edit), Bounds(3, 300)) == edit, t_o
        assert apply_instruction(t_o, edit.instruction) == edit.target
        operations.add(edit.instruction.split()[0])
    assert operations == {"make", "replace", "remove", "add"}


def test_template_is_deterministic_in_seed_and_caption():
    first = [write_edit(t_o, seed=0) for t_o in captions()]
    assert first == [write_edit(t_o, seed=0) for t_o in captions()]
    assert first != [write_edit(t_o, seed=1) for t_o in captions()]


def template_describer(**cfg) -> Describer:
    return Describer(TemplateBackend(), DescribeConfig(**cfg), seed=0)


def test_describer_inference_helpers_with_the_template_backend():
    describer = template_describer()
    assert describer.target_description("a cup of coffee on a red table", "make the cup blue") == (
        "a blue cup of coffee on a red table"
    )
    with pytest.raises(DescribeError, match="unsupported_instruction.*understands only"):
        describer.target_description("a cat on a sofa", "dance wildly")
    with pytest.raises(DescribeError, match="cannot caption"):
        describer.describe_image(scene(0, 0)[0])
    with pytest.raises(DescribeError, match="recaption"):
        template_describer(recaption=True)
