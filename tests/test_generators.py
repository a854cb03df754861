"""The method on every generator (SD, SDXL, FLUX.1 Fill) of the tiny zoo: L_CLIP reaches the head
through the composition, `Editor.edit` repaints only the region, and training steps from the
`features` cache (each generator's own conditioning: pooled embeddings, no unconditional prompt
for FLUX) gives the losses of computing everything in the step. The method's code is the same
for all three; only `models.inpainting` changes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from components.data.demo_edits import DEMO_EDITS, demo_edit_batch, demo_photo
from components.editing import Editor
from components.features.store import read_unconditional
from components.method.build import build_region_edit_model
from components.random_models.build import GENERATOR_FOLDERS
from flows.features import features_flow
from tests.test_features import cached_and_uncached_curves
from tests.test_method import frozen_parameters
from tests.test_training import write_training_data

GENERATORS = ["sdxl", "flux-fill"]  # SD runs through every other test of the method
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module", params=GENERATORS)
def family(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def params(family, zoo, zoo_params):
    folder = str(zoo[GENERATOR_FOLDERS[family]])
    models = zoo_params.models.model_copy(update={"inpainting": folder})
    return zoo_params.model_copy(update={"models": models})


def test_clip_loss_reaches_the_head_through_the_generator_and_nothing_frozen(params, family):
    torch.manual_seed(0)
    model = build_region_edit_model(params.models, params.method)
    assert model.generator.family == family
    out = model(*demo_edit_batch(2, 64), generator=torch.Generator().manual_seed(0))
    out.terms["clip"].backward()
    for name, parameter in model.head.named_parameters():
        if not name.startswith("f_sem."):  # f_sem is only in L_semAlign
            assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0, name
    assert all(p.grad is None and not p.requires_grad for p in frozen_parameters(model))


def test_an_edit_repaints_the_given_region_and_keeps_the_rest(params):
    photo, original, instruction, target = DEMO_EDITS[0]
    image = demo_photo(photo).resize((64, 64))
    region = np.zeros((64, 64), np.uint8)
    region[16:48, 16:48] = 255
    editor = Editor.from_params(params)
    result = editor.edit(
        image, instruction, original, target, seed=0, region=Image.fromarray(region, "L")
    )
    edited, source = np.asarray(result.image).astype(int), np.asarray(image).astype(int)
    feather = np.asarray(result.mask) > 0
    assert feather[32, 32] and not feather[0, 0]
    assert np.array_equal(edited[~feather], source[~feather])
    assert np.abs(edited[24:40, 24:40] - source[24:40, 24:40]).mean() > 1


def test_a_training_step_from_the_cache_gives_the_uncached_losses(
    params, family, tmp_path, prefect_harness
):
    data = write_training_data(tmp_path / "data")
    cache = tmp_path / "features"
    features_flow(*data, cache, params, cache / "metrics.json", batch_size=4)
    expected = {"sdxl": {"prompt"}, "flux-fill": set()}[family]  # FLUX: no unconditional
    assert set(read_unconditional(cache)) == expected | ({"pooled_prompt"} if expected else set())
    curves = cached_and_uncached_curves(params, data, cache, 1, tmp_path)
    # one step: after it, float16 storage (~1e-4 apart here) can flip a cell of these random
    # models' masks, and the runs part ways
    assert list(curves["cached"].index) == [1]
    pd.testing.assert_frame_equal(curves["cached"], curves["uncached"], rtol=1e-3, atol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="paper-size generators need a GPU")
def test_a_paper_size_generator_inpaints_on_a_gpu(family):
    """SDXL inpainting and FLUX.1 Fill at their real sizes (random weights) at 1024 pixels:
    the latents have the real geometry and Eq. 23 keeps the source outside the mask."""
    sys.path.insert(0, str(BENCHMARKS))
    from paper_generators import paper_generator

    generator = paper_generator(family, torch.device("cuda"), hollow=False)
    images = torch.rand(1, 3, 1024, 1024, device="cuda") * 2 - 1
    mask = torch.zeros(1, 1, 1024, 1024, device="cuda")
    mask[..., 256:768, 256:768] = 1
    with torch.autocast("cuda", dtype=torch.bfloat16):
        z_src = generator.encode_source(images)
        latents = generator.generate(
            images,
            mask,
            generator.encode_prompt(["a red square"]),
            torch.Generator("cuda").manual_seed(0),
            steps=2,
            guidance_scale=7.5,
            z_src=z_src,
        )
    assert latents.shape == z_src.shape and latents.shape[-2:] == (128, 128)
    assert torch.isfinite(latents).all()
    outside = torch.ones_like(latents, dtype=torch.bool)
    outside[..., 32:96, 32:96] = False
    assert torch.equal(latents[outside], z_src[outside])
    del generator
    torch.cuda.empty_cache()
