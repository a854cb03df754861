"""The world's models: trained by the pipeline, saved in the real checkpoints' formats and read
back by the project's own loaders; their checks and the loss landscape measure what they claim.

The models here train for two steps (their outputs are noise): the tests check formats,
determinism and the measuring code. What the trained world models score is the `world-checks`
stage's output (metrics/world.json), not a test's."""

from __future__ import annotations

import random

import numpy as np
import open_clip
import pytest
import torch
from diffusers import StableDiffusionInpaintPipeline

from components.config import MethodConfig, ModelsConfig, Params
from components.data.scenes import scene_graph
from components.describe.template import parse_scene
from components.evaluation.metrics import on_grid
from components.method.build import build_region_edit_model
from components.models.generators import load_generator_parts
from components.models.loading import load_clip
from components.world.checks import clip_check, inpainting_check
from components.world.edits import world_session
from components.world.landscape import gradient_aucs, random_cells, ranking_auc, region_losses
from components.world.zoo.build import METHOD_CLIP
from components.world.zoo.clip import ClipTraining, train_clip
from components.world.zoo.inpainting import CONTEXT, clip_tokenizer
from components.world.zoo.resumable import RunSettings
from components.world.zoo.scenes import ScenePool, swapped_captions


@pytest.fixture(scope="module")
def world_params(world_zoo, zoo_params) -> Params:
    models = zoo_params.models.model_copy(
        update={
            "world": str(world_zoo["clip"].parent),
            "clip": f"local-dir:{world_zoo['clip']}",
            "inpainting": str(world_zoo["sd-inpainting"]),
            "metric_clip": f"local-dir:{world_zoo['metric-clip']}",
        }
    )
    return zoo_params.model_copy(update={"models": ModelsConfig.model_validate(models)})


def test_the_world_models_load_through_the_real_checkpoints_loaders(world_zoo):
    clip, preprocess, tokenizer = load_clip(f"local-dir:{world_zoo['clip']}")
    assert isinstance(clip, open_clip.CLIP) and tokenizer(["a red circle"]).shape == (1, CONTEXT)
    grid = METHOD_CLIP["vision_cfg"]["image_size"] // METHOD_CLIP["vision_cfg"]["patch_size"]
    assert grid == 8  # the method's patch grid: 8 x 8 cells of 8 pixels
    family, parts = load_generator_parts(str(world_zoo["sd-inpainting"]))
    assert family == "sd"
    assert parts.unet.config.in_channels == 9
    assert 2 ** (len(parts.vae.config.block_out_channels) - 1) == 4  # 16 x 16 latents
    assert parts.vae.config.scaling_factor != 0.18215  # measured on world latents, not SD's
    # and diffusers' own pipeline runs it, as it runs SD 1.5 inpainting
    pipeline = StableDiffusionInpaintPipeline.from_pretrained(world_zoo["sd-inpainting"])
    image = scene_graph(0, 0).render(64)
    out = pipeline(
        "a red circle",
        image=image,
        mask_image=image.convert("L"),
        height=64,
        width=64,
        num_inference_steps=2,
        output_type="np",
    ).images
    assert out.shape == (1, 64, 64, 3)


def test_the_generators_tokenizer_is_openai_clips_bpe():
    captions = [scene_graph(0, i).caption for i in range(20)]
    ours = clip_tokenizer()(captions, padding="max_length", max_length=CONTEXT).input_ids
    reference = open_clip.SimpleTokenizer(context_length=CONTEXT)(captions)
    for mine, theirs in zip(ours, reference, strict=True):
        length = int((theirs != 0).sum())  # open_clip pads with 0, CLIPTokenizer with <eot>
        assert mine[:length] == theirs[:length].tolist()


def test_clip_training_is_deterministic(tmp_path):
    pool = ScenePool.draw(0, 16, 64, "zoo")
    quiet = RunSettings(progress=False)
    folders = [
        train_clip(tmp_path / name, METHOD_CLIP, pool, ClipTraining(2, batch=4), 0, quiet)[0]
        for name in ("a", "b")
    ]
    weights = [(f / "open_clip_model.safetensors").read_bytes() for f in folders]
    assert weights[0] == weights[1]


def test_swapped_captions_differ_in_one_binding_and_keep_the_captions_form():
    rng = random.Random(0)
    for index in range(50):
        scene = scene_graph(0, index)
        swapped = swapped_captions(scene, rng, 3)
        assert scene.caption not in swapped and len(set(swapped)) == len(swapped)
        for caption in swapped:
            parsed = parse_scene(caption)  # a caption the world could have written
            assert parsed is not None and len(parsed.objects) == len(scene.objects)


def test_the_checks_measure_shares_and_chance(world_params):
    accuracy = clip_check(world_params.models.clip, 0, 64)
    assert 0.0 <= accuracy <= 1.0
    checks = inpainting_check(world_params.models.inpainting, MethodConfig(steps=2), 0, 64, 2)
    assert set(checks) == {
        "inpainting/edit_success_ground_truth",
        "inpainting/edit_success_random_area",
        "vae/within_tolerance",
        "vae/edit_success_ceiling",
    }
    assert all(0.0 <= v <= 1.0 for v in checks.values())


def test_the_landscape_scores_each_region_with_the_training_steps_losses(world_params):
    torch.manual_seed(0)
    model = build_region_edit_model(world_params.models, world_params.method).eval()
    (edit,) = world_session(0, 0, "recolour", distractor=True, namespace="landscape")
    scores = region_losses(model, edit, seed=0)
    truth = on_grid(edit.region(64), 8)
    assert scores["ground_truth"]["cells"] == truth.sum() == scores["random_area"]["cells"]
    assert scores["whole_image"]["cells"] == 64 and scores["empty"]["cells"] == 0
    # the empty region changes nothing: no structure change, and no step along T_e - T_o
    assert scores["empty"]["clip_structure"] == 0.0
    assert scores["empty"]["clip_direction"] == 1.0


def test_the_ranking_auc_counts_ordered_pairs():
    scores = np.array([3.0, 2.0, 1.0, 0.0, 1.0])
    positive = np.array([True, False, True, False, False])
    # positives 3 and 1 against negatives 2, 0, 1: 3 wins thrice, 1 beats 0 and ties 1
    assert ranking_auc(scores, positive) == pytest.approx((3 + 1.5) / 6)
    assert ranking_auc(-scores, positive) == pytest.approx(1 - (3 + 1.5) / 6)
    assert np.isnan(ranking_auc(scores, np.ones(5, bool)))


def test_the_gradient_on_p_region_is_ranked_at_the_empty_and_the_untrained_region(world_params):
    torch.manual_seed(0)
    model = build_region_edit_model(world_params.models, world_params.method).eval()
    (edit,) = world_session(0, 0, "recolour", distractor=True, namespace="landscape")
    aucs = gradient_aucs(model, edit, seed=0)
    assert set(aucs) == {"empty", "untrained_head"}
    for start in aucs.values():
        assert set(start) == {"clip_global", "clip_direction", "clip_structure", "clip"}
        assert all(0.0 <= auc <= 1.0 for auc in start.values())
    # at the empty region L_CLIPd's floor still pulls: its gradient is not zero on every cell
    # (which would tie every cell, an AUC of exactly 0.5)
    assert aucs["empty"]["clip_direction"] != 0.5
    assert model.head.region_probability.mlp[-1].bias.grad is None  # P_region only


def test_grid_cells_hold_every_pixel_of_the_region():
    region = np.zeros((64, 64), bool)
    region[7:9, 15:17] = True  # four pixels over four cells
    cells = on_grid(region, 8)
    assert cells.sum() == 4 and cells[0, 1] and cells[1, 2]
    assert random_cells(cells.astype(np.float32), 3).sum() == 4
