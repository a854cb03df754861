"""`Editor.edit`: source pixels kept outside the mask, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from components.data.demo_edits import DEMO_EDITS, demo_photo
from components.editing import FALLBACK_CAPTION, Editor
from components.method.mask import dilate

PHOTO, T_O, T_INS, T_E = DEMO_EDITS[0]


def editor_for(zoo_params, **method) -> Editor:
    return Editor.from_params(
        zoo_params.model_copy(update={"method": zoo_params.method.model_copy(update=method)})
    )


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return demo_photo(PHOTO).resize((90, 60))  # not square, not the model's resolution


def edit(
    editor: Editor,
    image: Image.Image,
    instruction: str = T_INS,
    seed: int = 0,
    region: Image.Image | None = None,
):
    return editor.edit(
        image,
        instruction,
        original_description=T_O,
        target_description=T_E,
        seed=seed,
        region=region,
    )


def test_empty_mask_returns_the_input_exactly(zoo_params, photo):
    result = edit(editor_for(zoo_params, tau=1.0), photo)  # no P can exceed 1: empty mask
    assert np.array_equal(np.asarray(result.image), np.asarray(photo))
    assert not np.asarray(result.mask).any()


@pytest.mark.parametrize("tau", [0.3, 0.5, 0.6])
def test_pixels_outside_the_feathered_mask_are_the_source(zoo_params, photo, tau):
    result = edit(editor_for(zoo_params, tau=tau), photo)
    assert result.image.size == photo.size == result.mask.size and result.mask.mode == "L"
    outside = np.asarray(result.mask) == 0
    assert np.array_equal(np.asarray(result.image)[outside], np.asarray(photo)[outside])
    assert (result.original_description, result.target_description) == (T_O, T_E)
    assert (result.original_source, result.target_source) == ("given", "given")


def test_some_mask_repaints_something(zoo_params, photo):
    result = edit(editor_for(zoo_params, tau=0.0), photo)  # every cell above tau
    assert np.asarray(result.mask).all()
    assert not np.array_equal(np.asarray(result.image), np.asarray(photo))


def test_same_seed_same_edit(zoo_params, photo):
    editor = editor_for(zoo_params, tau=0.0)
    first, again, other = (edit(editor, photo, seed=s) for s in (1, 1, 2))
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    assert not np.array_equal(np.asarray(first.image), np.asarray(other.image))


@pytest.mark.parametrize("instruction", ["", "   \n", None])
def test_empty_instruction_is_refused(zoo_params, photo, instruction):
    with pytest.raises(ValueError, match="instruction must be a non-empty string"):
        edit(editor_for(zoo_params), photo, instruction=instruction)


def test_missing_target_is_written_by_the_describe_backend(zoo_params, photo):
    result = editor_for(zoo_params, tau=1.0).edit(
        photo, "make the cat blue", original_description="an orange cat on a bed"
    )
    assert result.target_description == "a blue cat on a bed"  # template backend's recolour
    assert result.target_source == "template writer template-v1"


def test_missing_caption_is_asked_of_the_captioner_and_a_rejection_falls_back_saying_why(
    zoo_params, photo
):
    """The template backend cannot caption, so models.captioner is asked (paper §3.1: t_o =
    MLLM(X)); the zoo's random captioner never answers the describe JSON, so t_o falls back, and
    the template cannot apply the instruction to the fallback caption, so t_e is the instruction.
    A captioner that does answer: tests/test_cli.py::test_edit_with_the_default_profile…"""
    result = editor_for(zoo_params, tau=1.0).edit(photo, T_INS)
    captioner = f"captioner {zoo_params.models.captioner} on the transformers backend"
    assert result.original_description == FALLBACK_CAPTION
    assert result.original_source.startswith(f"fallback: {captioner} could not describe")
    assert "rejected as not_json" in result.original_source  # the model answered, not JSON
    assert result.target_description == T_INS
    assert result.target_source.startswith("fallback: template writer template-v1 could not")
    assert "not_applicable" in result.target_source


def test_tiny_and_huge_images_are_refused(zoo_params):
    editor = editor_for(zoo_params, max_pixels=200 * 200)
    with pytest.raises(ValueError, match="at least 16 pixels"):
        edit(editor, Image.new("RGB", (120, 10)))
    with pytest.raises(ValueError, match="method.max_pixels"):
        edit(editor, Image.new("RGB", (300, 300)))
    with pytest.raises(TypeError, match="PIL"):
        edit(editor, np.zeros((64, 64, 3), np.uint8))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_non_rgb_images_are_converted(zoo_params, photo, mode):
    result = edit(editor_for(zoo_params), photo.convert(mode))
    assert result.image.mode == "RGB" and result.image.size == photo.size


def test_a_given_region_is_repainted_instead_of_the_heads_and_nothing_beyond_its_feather(
    zoo_params, photo
):
    region = np.zeros((photo.height, photo.width), np.uint8)
    region[20:40, 30:60] = 255
    editor = editor_for(zoo_params, tau=1.0)  # the head would repaint nothing
    result = edit(editor, photo, region=Image.fromarray(region, "L"))
    mask, inside = np.asarray(result.mask), region > 0
    assert (mask[inside] == 255).all()
    reach = 2 * zoo_params.method.feather  # how far the feathered edge can spread
    grown = dilate(torch.from_numpy(inside).float()[None, None], reach)[0, 0].numpy() > 0
    assert not mask[~grown].any()
    kept = mask == 0
    assert np.array_equal(np.asarray(result.image)[kept], np.asarray(photo)[kept])
    assert not np.array_equal(np.asarray(result.image)[inside], np.asarray(photo)[inside])
    with pytest.raises(ValueError, match="region must be a picture of the image's size"):
        edit(editor, photo, region=Image.new("L", (64, 64), 255))


def test_the_whole_image_given_is_the_same_edit_as_the_head_choosing_it(zoo_params, photo):
    """One code path: a given region and a predicted one differ in nothing else."""
    whole = Image.new("L", photo.size, 255)
    given = edit(editor_for(zoo_params, tau=1.0), photo, seed=3, region=whole)
    chosen = edit(editor_for(zoo_params, tau=0.0), photo, seed=3)  # every cell above tau
    assert np.array_equal(np.asarray(given.image), np.asarray(chosen.image))
    assert np.array_equal(np.asarray(given.mask), np.asarray(chosen.mask))


def test_a_checkpoint_is_loaded_over_the_same_frozen_models(zoo_params, tmp_path):
    untrained = editor_for(zoo_params)
    weights = {name: value + 1 for name, value in untrained.model.head.state_dict().items()}
    save_file(weights, tmp_path / "head.safetensors")
    trained = untrained.with_head(tmp_path / "head.safetensors")
    assert trained.model.encoders is untrained.model.encoders
    assert trained.model.generator is untrained.model.generator
    loaded = Editor.from_params(zoo_params, tmp_path / "head.safetensors")
    for head in (trained.model.head, loaded.model.head):
        assert all(torch.equal(value, weights[name]) for name, value in head.state_dict().items())
    seeded = untrained.model.head.state_dict()  # the untrained head is left as it was drawn
    again = editor_for(zoo_params).model.head.state_dict()
    assert all(torch.equal(value, again[name]) for name, value in seeded.items())
