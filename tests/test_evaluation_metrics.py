"""The benchmark metrics: the maths by hand, then the Metrics end to end on the tiny zoo models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from components.evaluation.metrics import (
    EmuEditMetrics,
    KnownAnswer,
    MagicBrushMetrics,
    MetricModels,
    RegionMetrics,
    changed_region,
    clip_direction,
    cosine,
    edit_success,
    load_metric_models,
    pixel_distances,
    region_overlap,
)
from tests.conftest import noise_image

RED, GREY, BLACK = (255, 0, 0), (51, 51, 51), (0, 0, 0)


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (32, 24)) -> Image.Image:
    return Image.new("RGB", size, colour)


@pytest.fixture(scope="module")
def models(zoo_params) -> MetricModels:
    m = zoo_params.models
    return load_metric_models(m.metric_clip, m.metric_clip_pretrained, m.dino)


def test_cosine_by_hand():
    a = torch.tensor([[1.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    b = torch.tensor([[1.0, 1.0], [-3.0, -4.0], [1.0, 2.0]])
    assert torch.allclose(cosine(a, b), torch.tensor([1 / math.sqrt(2), -1.0, 0.0]))


def test_clip_direction_by_hand_and_its_sign():
    source, edited = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.6, 0.8, 0.0]])
    source_text, target_text = torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.0, 1.0, 0.0]])
    # image moves by (-0.4, 0.8, 0), text by (0, 1, -1): cos = 0.8 / (sqrt(0.8) * sqrt(2))
    expected = 0.8 / (math.sqrt(0.8) * math.sqrt(2))
    assert clip_direction(edited, source, target_text, source_text).item() == pytest.approx(
        expected
    )
    assert clip_direction(edited, source, source_text, target_text).item() == pytest.approx(
        -expected
    )
    assert clip_direction(source, source, target_text, source_text).item() == 0.0  # no change


def test_pixel_distances_by_hand():
    assert pixel_distances(solid(RED), solid(BLACK)) == pytest.approx((1 / 3, 1 / 3))
    assert pixel_distances(solid(GREY), solid(BLACK)) == pytest.approx((0.2, 0.04))
    assert pixel_distances(solid(GREY), solid(GREY)) == (0.0, 0.0)
    two = Image.fromarray(np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8))  # 2x1
    assert pixel_distances(two, solid(BLACK, (2, 1))) == pytest.approx((0.5, 0.5))


def test_the_generated_image_is_resized_to_the_reference_size_first():
    generated, reference = noise_image(1, (40, 30)), noise_image(2, (64, 48))
    resized = generated.resize(reference.size, Image.Resampling.BICUBIC)
    assert pixel_distances(generated, reference) == pixel_distances(resized, reference)
    assert pixel_distances(generated, reference) != pixel_distances(
        generated, reference.resize(generated.size, Image.Resampling.BICUBIC)
    )
    assert pixel_distances(solid(RED, (10, 10)), solid(BLACK, (64, 48))) == pytest.approx(
        (1 / 3, 1 / 3)
    )


def emu_batch() -> tuple[list[Image.Image], list[Image.Image], list[str], list[str], list[str]]:
    inputs = [noise_image(i, (48, 40)) for i in range(4)]
    edited = [inputs[0], solid(RED), noise_image(9, (24, 24)), solid(GREY, (60, 50))]
    before = ["a photo", "a noisy picture", "static", "grey noise"]
    after = ["a red photo", "a red square", "a cat", "a grey wall"]
    return edited, inputs, before, after, ["add", "color", "add", "global"]


def test_emu_edit_values_follow_the_definitions(models):
    edited, inputs, before, after, tasks = emu_batch()
    metric = EmuEditMetrics(models, tasks=sorted(set(tasks)))
    metric.update(edited, inputs, before, after, tasks)
    rows = metric.batch_values
    e, i = models.clip_images(edited), models.clip_images(inputs)
    t_in, t_out = models.clip_texts(before), models.clip_texts(after)
    d_e, d_i = models.dino_images(edited), models.dino_images(inputs)
    for n, row in enumerate(rows):
        direction = torch.cosine_similarity(e[n] - i[n], t_out[n] - t_in[n], dim=0)
        assert row["clip_dir"] == pytest.approx(direction.item(), abs=1e-6)
        assert row["clip_out"] == pytest.approx(torch.dot(e[n], t_out[n]).item(), abs=1e-6)
        assert row["clip_img"] == pytest.approx(torch.dot(e[n], i[n]).item(), abs=1e-6)
        assert row["dino"] == pytest.approx(torch.dot(d_e[n], d_i[n]).item(), abs=1e-6)
        assert row["l1"] == pytest.approx(pixel_distances(edited[n], inputs[n])[0])
    # an unchanged image: CLIP_img = DINO = 1, L1 = 0, and no direction at all
    assert rows[0]["clip_img"] == pytest.approx(1.0, abs=1e-6)
    assert rows[0]["dino"] == pytest.approx(1.0, abs=1e-6)
    assert rows[0]["l1"] == 0.0 and rows[0]["clip_dir"] == 0.0


def test_swapping_the_captions_flips_clip_dir(models):
    edited, inputs, before, after, _ = emu_batch()
    forward, backward = EmuEditMetrics(models), EmuEditMetrics(models)
    forward.update(edited, inputs, before, after)
    backward.update(edited, inputs, after, before)
    for f, b in zip(forward.batch_values[1:], backward.batch_values[1:], strict=True):
        assert b["clip_dir"] == pytest.approx(-f["clip_dir"], abs=1e-6) and f["clip_dir"] != 0
        assert b["clip_img"] == f["clip_img"] and b["l1"] == f["l1"]


def test_emu_edit_means_overall_and_per_task(models):
    edited, inputs, before, after, tasks = emu_batch()
    metric = EmuEditMetrics(models, tasks=["add", "color", "global", "style"])
    metric.update(edited, inputs, before, after, tasks)
    rows, result = metric.batch_values, metric.compute()
    for name in ("clip_dir", "clip_out", "clip_img", "l1", "dino"):
        assert result[name].item() == pytest.approx(np.mean([r[name] for r in rows]))
        assert result[f"add/{name}"].item() == pytest.approx((rows[0][name] + rows[2][name]) / 2)
        assert result[f"global/{name}"].item() == pytest.approx(rows[3][name])
    assert not any(key.startswith("style/") for key in result)  # a task with no sample
    with pytest.raises(ValueError, match="unknown tasks \\['remove'\\]"):
        metric.update(edited[:1], inputs[:1], before[:1], after[:1], ["remove"])
    with pytest.raises(ValueError, match="one value per image"):
        metric.update(edited, inputs[:2], before, after)


def test_two_updates_equal_one_and_states_merge_like_ddp(models):
    edited, inputs, before, after, tasks = emu_batch()
    kinds = sorted(set(tasks))
    whole, parts = EmuEditMetrics(models, kinds), EmuEditMetrics(models, kinds)
    whole.update(edited, inputs, before, after, tasks)
    parts.update(edited[:2], inputs[:2], before[:2], after[:2], tasks[:2])
    parts.update(edited[2:], inputs[2:], before[2:], after[2:], tasks[2:])
    rank0, rank1 = EmuEditMetrics(models, kinds), EmuEditMetrics(models, kinds)
    rank0.update(edited[:1], inputs[:1], before[:1], after[:1], tasks[:1])
    rank1.update(edited[1:], inputs[1:], before[1:], after[1:], tasks[1:])
    rank0.merge_state(rank1)  # the same "sum" reduction DDP applies to every state
    expected = whole.compute()
    for other in (parts.compute(), rank0.compute()):
        assert other.keys() == expected.keys()
        for key, value in expected.items():
            assert torch.allclose(other[key], value, atol=1e-6), key
    whole.reset()
    assert whole.sums.abs().sum() == 0 and whole.counts.sum() == 0


def test_magicbrush_values_follow_the_official_script(models):
    generated = [noise_image(20, (40, 40)), solid(RED, (16, 16)), noise_image(21, (64, 64))]
    targets = [noise_image(22, (64, 64)), solid(RED, (64, 64)), generated[2]]
    captions = ["a noisy square", None, "static"]
    metric = MagicBrushMetrics(models)
    metric.update(generated, targets, captions)
    rows = metric.batch_values
    g, t = models.clip_images(generated), models.clip_images(targets)
    d_g, d_t = models.dino_images(generated), models.dino_images(targets)
    texts = models.clip_texts(["a noisy square", "static"])
    for n, row in enumerate(rows):
        assert (row["l1"], row["l2"]) == pytest.approx(pixel_distances(generated[n], targets[n]))
        assert row["clip_i"] == pytest.approx(torch.dot(g[n], t[n]).item(), abs=1e-6)
        assert row["dino"] == pytest.approx(torch.dot(d_g[n], d_t[n]).item(), abs=1e-6)
    assert rows[0]["clip_t"] == pytest.approx(torch.dot(g[0], texts[0]).item(), abs=1e-6)
    assert rows[2]["clip_t"] == pytest.approx(torch.dot(g[2], texts[1]).item(), abs=1e-6)
    assert math.isnan(rows[1]["clip_t"])
    assert (rows[1]["l1"], rows[1]["l2"]) == (0.0, 0.0)  # a solid colour survives the resize
    assert rows[2]["clip_i"] == pytest.approx(1.0, abs=1e-6)
    result = metric.compute()
    assert result["clip_t"].item() == pytest.approx((rows[0]["clip_t"] + rows[2]["clip_t"]) / 2)
    for name in ("l1", "l2", "clip_i", "dino"):
        assert result[name].item() == pytest.approx(np.mean([r[name] for r in rows]))


def test_magicbrush_accumulates_and_leaves_out_clip_t_without_captions(models):
    generated = [noise_image(30 + n, (48, 48)) for n in range(3)]
    targets = [noise_image(40 + n, (32, 32)) for n in range(3)]
    uncaptioned = MagicBrushMetrics(models)
    uncaptioned.update(generated, targets)
    assert set(uncaptioned.compute()) == {"l1", "l2", "clip_i", "dino"}
    whole, parts = MagicBrushMetrics(models), MagicBrushMetrics(models)
    captions = ["one", None, "three"]
    whole.update(generated, targets, captions)
    parts.update(generated[:1], targets[:1], captions[:1])
    parts.update(generated[1:], targets[1:], captions[1:])
    for key, value in whole.compute().items():
        assert torch.allclose(parts.compute()[key], value, atol=1e-6), key


def picture(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels.astype(np.uint8), "L" if pixels.ndim == 2 else "RGB")


def test_region_overlap_by_hand_in_pixels():
    mask = np.zeros((8, 8), np.uint8)
    mask[0:4, 0:4] = 255  # MagicBrush's convention: white = the edited region (16 pixels)
    region = np.zeros((4, 4), np.uint8)  # our region at half the size: resized (nearest) first
    region[1:3, 0:4] = 255  # covers rows 2-5, columns 0-7 at the mask's size (32 pixels)
    # intersection rows 2-3 x columns 0-3 = 8; union 16 + 32 - 8 = 40
    scores = region_overlap(picture(region), picture(mask))
    assert scores == pytest.approx((8 / 40, 8 / 32, 8 / 16))
    feathered = np.where(region > 0, 254, 0)  # a rim blending source and edit: not repainted
    empty = picture(feathered)
    iou, precision, recall = region_overlap(empty, picture(mask))
    assert (iou, recall) == (0.0, 0.0) and math.isnan(precision)  # nothing predicted
    iou, precision, recall = region_overlap(empty, Image.new("L", (8, 8), 0))
    assert iou == 1.0 and math.isnan(precision) and math.isnan(recall)  # both empty: they agree


def test_region_overlap_by_hand_on_the_patch_grid():
    """A 2x2 grid of 4x4-pixel cells; a cell is inside when any of its pixels is."""
    mask = np.zeros((8, 8), np.uint8)
    mask[0:4, 0:4] = 255  # the top-left cell, whole
    mask[4:5, 4:8] = 255  # a quarter of the bottom-right cell: it counts
    region = np.zeros((8, 8), np.uint8)
    region[0:4, 0:6] = 255  # the top-left cell and half of the top-right one
    # cells: mask {top-left, bottom-right}, region {top-left, top-right}
    grid = region_overlap(picture(region), picture(mask), grid=2)
    assert grid == pytest.approx((1 / 3, 0.5, 0.5))
    # in pixels: intersection 16, region 24, mask 20, union 28
    assert region_overlap(picture(region), picture(mask)) == pytest.approx((16 / 28, 16 / 24, 0.8))


def known_answer() -> KnownAnswer:
    """A 16x16 grey input; the edit paints the 4x4 square at rows and columns 6-9 red."""
    source = np.full((16, 16, 3), 100, np.uint8)
    target = source.copy()
    target[6:10, 6:10] = RED
    mask = np.zeros((16, 16), np.uint8)
    mask[6:10, 6:10] = 255
    return KnownAnswer(picture(source), picture(mask), picture(target))


def test_edit_success_is_judged_in_pixels_against_the_rendered_target():
    answer = known_answer()
    target, source = np.asarray(answer.target), np.asarray(answer.source)
    assert edit_success(answer.target, answer) == 1.0
    assert edit_success(answer.source, answer) == 0.0  # the copy of the input did nothing
    near = target.astype(int) + 50  # within the tolerance (0.2 * 255 = 51) everywhere
    assert edit_success(picture(np.clip(near, 0, 255)), answer) == 1.0
    elsewhere = target.copy()
    elsewhere[0:4, :] = BLACK  # right inside, but a quarter of the rest changed too
    assert edit_success(picture(elsewhere), answer) == 0.0
    feathered = target.copy()
    feathered[4:12, 4:12] = np.where(np.asarray(answer.mask)[4:12, 4:12, None], RED, BLACK)
    assert edit_success(picture(feathered), answer) == 1.0  # the 2-pixel band is not judged
    half = source.copy()
    half[6:10, 6:8] = RED  # half the region painted: below the 80 % inside
    assert edit_success(picture(half), answer) == 0.0


def test_the_changed_region_is_the_pixels_beyond_the_tolerance():
    answer = known_answer()
    changed = changed_region(answer.target, answer.source)
    assert np.array_equal(np.asarray(changed), np.asarray(answer.mask))
    assert not np.asarray(changed_region(answer.source, answer.source)).any()


def test_region_metrics_means_shares_overlaps_and_success_per_group():
    answer = known_answer()
    regions = [answer.mask, Image.new("L", (16, 16), 0), Image.new("L", (16, 16), 255)]
    edited = [answer.target, answer.source, answer.target]
    metric = RegionMetrics(tasks=["recolour"], grid=8)
    metric.update(edited, regions, [answer, answer, None], ["recolour"] * 3, [True, False, None])
    rows, result = metric.batch_values, metric.compute()
    assert [r["region_iou"] for r in rows[:2]] == [1.0, 0.0] and math.isnan(rows[2]["region_iou"])
    assert [r["edit_success"] for r in rows[:2]] == [1.0, 0.0]
    assert [r["region_iou_grid"] for r in rows[:2]] == [1.0, 0.0]  # 2x2 of the 8x8 cells
    assert result["region_fraction"].item() == pytest.approx((16 / 256 + 0 + 1) / 3)
    assert result["empty_region"].item() == pytest.approx(1 / 3)
    assert result["region_iou"].item() == pytest.approx(0.5)  # the unanswered sample is left out
    assert result["region_precision"].item() == 1.0  # the empty region has no precision
    assert result["recolour/edit_success"].item() == 0.5
    assert result["distractor/edit_success"].item() == 1.0
    assert result["no distractor/edit_success"].item() == 0.0
    assert result["distractor/region_fraction"].item() == pytest.approx(16 / 256)


def test_a_copy_does_not_succeed_on_the_pixels_an_edit_keeps():
    # a reshape: the region holds the old and the new shape; their overlap keeps its colour
    source = np.full((16, 16, 3), 100, np.uint8)
    source[4:12, 4:12] = RED  # the old shape: 64 pixels
    target = np.full((16, 16, 3), 100, np.uint8)
    target[4:12, 4:13] = RED  # the new one: 8 more pixels, 89 % of the region kept its colour
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:13] = 255
    answer = KnownAnswer(picture(source), picture(mask), picture(target))
    assert edit_success(answer.source, answer) == 0.0  # judged on the 8 changed pixels
    assert edit_success(answer.target, answer) == 1.0
