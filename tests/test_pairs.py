"""The pair-trained comparison: editing pairs of the very scenes the head sees, InstructPix2Pix
started as the inpainting model's text-to-image mode and trained on them with its conditioning
dropout, loaded back by the evaluation's baseline loader; and the report that sets both sides
beside each other. The world models here train for two steps: these tests check the pairs,
the initialisation, the objective's parts and the report's judgement, not what the trained
editors score (that is `dvc repro`'s reports/pairs.csv)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from components.data.scenes import scene
from components.evaluation.baseline import InstructPix2PixBaseline
from components.evaluation.comparison import comparison_lines, load_comparison, verdicts
from components.models.generators import load_generator_parts
from components.world.instruct_pix2pix import (
    PairTraining,
    conditioning_dropout,
    encode_pairs,
    instruct_pix2pix_pipeline,
    train_instruct_pix2pix,
)
from components.world.pairs import editing_pair, scene_index


def test_a_pair_edits_the_scene_the_head_sees_and_its_target_is_rendered():
    for index in range(40):
        pair = editing_pair(0, index)
        image, caption = scene(0, index, 64)  # what prepare stores for world:scene-<index>
        assert caption == pair.t_o
        assert np.array_equal(np.asarray(pair.source_image(64)), np.asarray(image))
        changed = np.any(
            np.asarray(pair.source_image(64)) != np.asarray(pair.target_image(64)), axis=-1
        )
        assert changed.any() and not changed[~pair.region(64)].any()  # inside its region only
        assert editing_pair(0, index) == pair  # the same pair at every scale and run
    assert scene_index("world:scene-000123") == 123
    with pytest.raises(ValueError, match="prepare.source: world"):
        scene_index("folder:cat.jpg")


def test_instruction_dropout_follows_instruct_pix2pix_shares():
    drop_text, drop_image = conditioning_dropout(torch.rand(200_000), 0.05)
    text_only = (drop_text & ~drop_image).float().mean()
    image_only = (drop_image & ~drop_text).float().mean()
    both = (drop_text & drop_image).float().mean()
    for share in (text_only, image_only, both):
        assert abs(float(share) - 0.05) < 0.003


@pytest.fixture(scope="module")
def started(world_zoo):
    """The world's inpainting model (2 training steps) widened into InstructPix2Pix."""
    _, parts = load_generator_parts(str(world_zoo["sd-inpainting"]))
    return parts, instruct_pix2pix_pipeline(parts)


def test_the_unet_starts_as_the_inpainting_models_text_to_image_mode(started):
    parts, pipeline = started
    old, new = parts.unet, pipeline.unet
    assert new.config.in_channels == 8 and old.config.in_channels == 9
    z = torch.randn(1, 4, 16, 16)
    blank = parts.vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mode()
    masked = blank * parts.vae.config.scaling_factor
    with torch.no_grad():
        painted = old.conv_in(torch.cat([z, torch.ones(1, 1, 16, 16), masked], 1))
        source = torch.randn(1, 4, 16, 16)
        widened = new.conv_in(torch.cat([z, source], 1))
        # the fold is exact where the blank latent is what the centre of the grid sees
        assert torch.allclose(widened[..., 8, 8], painted[..., 8, 8], atol=1e-5)
        states = torch.randn(1, 8, old.config.cross_attention_dim)
        t = torch.tensor([500])
        one = new(torch.cat([z, source], 1), t, states).sample
        other = new(torch.cat([z, torch.randn(1, 4, 16, 16)], 1), t, states).sample
    assert torch.equal(one, other)  # the source's channels start at zero, as InstructPix2Pix
    for name, weight in old.state_dict().items():  # everything else is the inpainting UNet's
        if not name.startswith("conv_in."):
            assert torch.equal(new.state_dict()[name], weight), name


def test_the_inpainting_start_is_the_inpainter_told_the_whole_image(started):
    parts, _ = started
    new = instruct_pix2pix_pipeline(parts, "inpainting").unet
    z, source = torch.randn(1, 4, 16, 16), torch.randn(1, 4, 16, 16)  # source: unscaled
    known = source * parts.vae.config.scaling_factor  # the inpainter's masked latent is scaled
    with torch.no_grad():
        told = parts.unet.conv_in(torch.cat([z, torch.zeros(1, 1, 16, 16), known], 1))
        widened = new.conv_in(torch.cat([z, source], 1))
    assert torch.allclose(widened, told, atol=1e-5)  # everywhere: no mask, nothing to fold
    with pytest.raises(ValueError, match="pairs.init"):
        instruct_pix2pix_pipeline(parts, "random")


def test_training_reaches_the_source_channels_counts_its_flops_and_loads_as_a_baseline(
    started, world_zoo, tmp_path
):
    parts, _ = started
    pipeline = instruct_pix2pix_pipeline(parts)  # a fresh UNet: the fixture's stays untrained
    pairs = [editing_pair(0, index) for index in range(6)]
    encoded = encode_pairs(pipeline, pairs, 64)
    assert encoded.source.shape == (6, 4, 16, 16) and encoded.instruction.shape[0] == 6
    training = PairTraining(epochs=2, batch=4, lr=1e-3, warmup=1, conditioning_dropout=0.05)
    result = train_instruct_pix2pix(pipeline, encoded, training, seed=0, progress=False)
    assert len(result.losses) == training.steps_for(6) == 3
    assert result.samples_seen == 12
    assert pipeline.unet.conv_in.weight[:, 4:].abs().sum() > 0  # it learns to read the source
    assert result.flops_per_sample > 0
    pipeline.save_pretrained(tmp_path / "ip2p", safe_serialization=True)
    baseline = InstructPix2PixBaseline.load(str(tmp_path / "ip2p"), 64, 2, 7.5, 1.5)
    edited = baseline.edit(pairs[0].source_image(64), pairs[0].t_ins, seed=0)
    assert edited.size == (64, 64)


def _record(scores: dict, samples: int) -> dict:
    body = {"profile": "default", "training_samples": samples, "cases": 4, "sessions": 2}
    return body | {"scores": scores}


def test_the_comparison_judges_each_metric_by_its_direction_and_says_who_wins(tmp_path):
    metrics, scales = tmp_path / "metrics", {"1M": 2, "2M": 4}
    values = {  # side -> scale -> (l1, region_iou)
        "ours": {"1M": (0.10, 0.20), "2M": (0.05, 0.30)},
        "pairs": {"1M": (0.20, 0.40), "2M": (0.02, 0.30)},
    }
    pairs = {}
    for scale, count in scales.items():
        scores = {
            side: {f"{side}/l1": v[scale][0], f"{side}/region_iou": v[scale][1]}
            for side, v in values.items()
        }
        (metrics / scale).mkdir(parents=True)
        (metrics / scale / "emu_edit.json").write_text(json.dumps(_record(scores["ours"], count)))
        compute = {"compute": {"train_tflop": 0.5 * count, "flops_per_sample": 1e9}}
        (metrics / "train").mkdir(exist_ok=True)
        (metrics / "train" / f"{scale}.json").write_text(json.dumps(compute))
        pairs[scale] = {"train": compute, "emu_edit": _record(scores["pairs"], count)}
    (metrics / "pairs.json").write_text(json.dumps(pairs))
    (metrics / "3M").mkdir()
    (metrics / "3M" / "emu_edit.json").write_text(json.dumps(_record({"ours/l1": 0.01}, 6)))

    published = {
        "emu_edit": [
            {"method": "InstructPix2Pix (450K)", "l1": 0.1217},
            {"method": "Ours (5M)", "samples": 5_000_000, "l1": 0.0723},
        ]
    }
    comparison = load_comparison(metrics, scales | {"3M": 6}, published)
    assert {(r["scale"], r["side"]) for r in comparison.rows} == {
        ("1M", "ours"),
        ("1M", "pairs"),
        ("2M", "ours"),
        ("2M", "pairs"),
    }  # 3M has one side only: nothing to compare
    judged = {v["metric"]: v for v in verdicts(comparison)}
    # lower L1 wins: ours at 1M, the pair-trained editor at 2M
    assert (judged["l1"]["ours_better"], judged["l1"]["pairs_better"]) == (1, 1)
    assert (judged["region_iou"]["pairs_better"], judged["region_iou"]["ties"]) == (1, 1)
    lines = "\n".join(comparison_lines(comparison, tmp_path / "reports"))
    assert "InstructPix2Pix (450K) (published)" in lines and "0.1217" in lines
    assert "ours better in 1 of 4 comparisons, the pair-trained editor in 2, 1 tied" in lines
    assert "Ours (5M) against InstructPix2Pix (450K): 1/1" in lines  # the paper's lower L1
    assert (tmp_path / "reports" / "pairs.png").stat().st_size > 0
    rows = (tmp_path / "reports" / "pairs.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and "train_tflop" in rows[0]


def test_without_world_data_the_stage_records_why_it_made_no_pairs(tmp_path, prefect_harness):
    from components.config import Params, PrepareConfig
    from flows.pairs import pairs_flow

    params = Params(
        prepare=PrepareConfig(source="demo"),
        pairs={"out": str(tmp_path / "checkpoints/pairs")},
        evaluate={"out": str(tmp_path / "evaluations")},
    )
    metrics = tmp_path / "metrics" / "pairs.json"
    record = pairs_flow(params, ["1M"], tmp_path, tmp_path, metrics, tmp_path / "plots")
    assert record == {}
    assert "prepare.source is 'demo'" in json.loads(metrics.read_text())["skipped"]
    for folder in ("checkpoints/pairs", "evaluations/pairs", "plots"):  # DVC's outputs exist
        assert (tmp_path / folder).is_dir()
