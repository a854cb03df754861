"""The world's release: its training resumes exactly after a kill, refuses a state of other
settings, and ships as fp16 files that the project's loaders read back and its manifest
vouches for."""

from __future__ import annotations

import open_clip
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from components.models.loading import load_clip, load_instruction_encoder
from components.world.zoo.build import METHOD_CLIP
from components.world.zoo.clip import ClipTraining, train_clip
from components.world.zoo.inpainting import (
    InpaintingTraining,
    clip_tokenizer,
    text_encoder_from_clip,
    train_inpainting,
)
from components.world.zoo.instruction import (
    InstructionTraining,
    instruction_check,
    train_instruction_encoder,
)
from components.world.zoo.release import read_manifest, verify_release, write_release
from components.world.zoo.resumable import ResumeError, RunSettings
from components.world.zoo.scenes import ScenePool
from flows.cli import app


class Killed(Exception):
    """Stands in for a kill in the middle of training."""


def killed_at_first_check():
    """A curve check that kills the run the first time it is called, and scores 0 after."""
    calls = []

    def check(*_model) -> float:
        calls.append(1)
        if len(calls) == 1:
            raise Killed
        return 0.0

    return check


@pytest.fixture(scope="module")
def pool() -> ScenePool:
    return ScenePool.draw(0, 16, 64, "zoo")


@pytest.fixture(scope="module")
def text_tower() -> open_clip.CLIP:
    torch.manual_seed(0)
    return open_clip.CLIP(**METHOD_CLIP).eval()


def test_the_inpainters_text_encoder_is_the_clip_text_tower(text_tower, pool):
    tokens = open_clip.SimpleTokenizer(context_length=METHOD_CLIP["text_cfg"]["context_length"])
    ids = tokens(pool.captions(torch.arange(4)))
    with torch.no_grad():
        x = text_tower.token_embedding(ids) + text_tower.positional_embedding
        expected = text_tower.ln_final(text_tower.transformer(x, attn_mask=text_tower.attn_mask))
        copied = text_encoder_from_clip(text_tower, clip_tokenizer())(ids).last_hidden_state
    torch.testing.assert_close(copied, expected, rtol=0, atol=1e-5)
    assert clip_tokenizer()(pool.captions(torch.arange(4)))["input_ids"][0] == [
        token for token in ids[0].tolist() if token
    ]  # the pipeline's tokenizer gives the tower's tokens (open_clip pads with 0)


def test_a_killed_clip_training_resumes_exactly(tmp_path, pool):
    training = ClipTraining(6, batch=4, warmup=2)
    straight, _ = train_clip(
        tmp_path / "straight" / "clip",
        METHOD_CLIP,
        pool,
        training,
        0,
        RunSettings(tmp_path / "a", every_s=0, progress=False),
    )
    run = RunSettings(tmp_path / "b", every_s=0, curve_points=2, progress=False)
    check = killed_at_first_check()
    with pytest.raises(Killed):  # at step 3, after the state of step 2 was written
        train_clip(tmp_path / "resumed" / "clip", METHOD_CLIP, pool, training, 0, run, check)
    assert torch.load(tmp_path / "b" / "clip.pt", weights_only=False)["step"] == 2
    resumed, state = train_clip(
        tmp_path / "resumed" / "clip", METHOD_CLIP, pool, training, 0, run, check
    )
    weights = [load_file(f / "open_clip_model.safetensors") for f in (straight, resumed)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert [point["step"] for point in state.curve] == [3, 6]  # the killed check, run again


def test_a_killed_inpainter_training_resumes_exactly(tmp_path, pool, text_tower):
    training = InpaintingTraining(3, 4, batch=2, vae_batch=2, warmup=2)
    straight, _ = train_inpainting(
        tmp_path / "straight",
        pool,
        training,
        0,
        text_tower,
        RunSettings(tmp_path / "a", every_s=0, progress=False),
    )
    run = RunSettings(tmp_path / "b", every_s=0, curve_points=2, progress=False)
    check = killed_at_first_check()
    with pytest.raises(Killed):  # in the UNet's training, after its state of step 2
        train_inpainting(tmp_path / "resumed", pool, training, 0, text_tower, run, check)
    resumed, _ = train_inpainting(tmp_path / "resumed", pool, training, 0, text_tower, run, check)
    for part in (
        "unet/diffusion_pytorch_model",
        "text_encoder/model",
        "vae/diffusion_pytorch_model",
    ):
        a, b = (load_file(folder / f"{part}.safetensors") for folder in (straight, resumed))
        assert all(torch.equal(a[k], b[k]) for k in a), part
    frozen = text_encoder_from_clip(text_tower, clip_tokenizer()).state_dict()
    trained = load_file(straight / "text_encoder" / "model.safetensors")
    assert all(torch.equal(trained[k], v) for k, v in frozen.items())  # the UNet trained alone


def test_a_state_of_other_settings_is_refused(tmp_path, pool):
    run = RunSettings(tmp_path / "work", every_s=0, progress=False)
    train_clip(tmp_path / "clip", METHOD_CLIP, pool, ClipTraining(2, batch=4), 0, run)
    with pytest.raises(ResumeError, match="other settings"):
        train_clip(tmp_path / "clip", METHOD_CLIP, pool, ClipTraining(3, batch=4), 0, run)


def test_the_release_is_fp16_read_back_in_fp32_and_vouched_for(tmp_path, pool):
    trained = tmp_path / "trained"
    _, state = train_clip(
        trained / "clip",
        METHOD_CLIP,
        pool,
        ClipTraining(2, batch=4),
        0,
        RunSettings(progress=False),
    )
    release = write_release(trained, tmp_path / "release", {"clip": state}, {"seed": 0})
    tensors = load_file(release / "clip" / "open_clip_model.safetensors")
    assert {t.dtype for t in tensors.values()} == {torch.float16}
    model, _, _ = load_clip(f"local-dir:{release / 'clip'}")
    assert next(model.parameters()).dtype == torch.float32
    original = load_file(trained / "clip" / "open_clip_model.safetensors")
    for name, value in model.state_dict().items():
        assert torch.equal(value, original[name].half().float()), name
    manifest = read_manifest(release)
    assert set(manifest["files"]) == {
        "clip/open_clip_model.safetensors",
        "clip/open_clip_config.json",
    }
    assert manifest["trained_by"]["seed"] == 0 and manifest["models"]["clip"]["wall_s"] >= 0
    assert verify_release(release) == []
    (release / "clip" / "open_clip_config.json").write_text("{}\n")
    assert verify_release(release) == ["clip/open_clip_config.json"]


def test_the_command_will_not_start_over_a_training_in_progress(tmp_path):
    states = tmp_path / "work" / "states"
    states.mkdir(parents=True)
    (states / "clip.pt").write_bytes(b"")
    done = CliRunner().invoke(app, ["world-zoo", "--release", "--work", str(tmp_path / "work")])
    assert done.exit_code == 2
    assert "--resume" in done.stderr and str(states) in done.stderr


def test_the_instruction_encoder_trains_resumably_in_clips_space(tmp_path, pool):
    torch.manual_seed(0)
    clip = open_clip.CLIP(**METHOD_CLIP)
    training = InstructionTraining(4, batch=4, warmup=2)
    straight, _ = train_instruction_encoder(
        tmp_path / "straight", clip, pool, training, 0, RunSettings(progress=False)
    )
    run = RunSettings(tmp_path / "work", every_s=0, curve_points=2, progress=False)
    check = killed_at_first_check()
    with pytest.raises(Killed):
        train_instruction_encoder(tmp_path / "resumed", clip, pool, training, 0, run, check)
    resumed, _ = train_instruction_encoder(
        tmp_path / "resumed", clip, pool, training, 0, run, check
    )
    tokenizer, encoder = load_instruction_encoder(str(resumed))  # as google/flan-t5-base loads
    assert encoder.config.d_model == clip.visual.output_dim  # the method's projection: identity
    assert tokenizer.tokenize("make the red circle green")[-3:] == ["▁red", "▁circle", "▁green"]
    a, b = (load_file(folder / "model.safetensors") for folder in (straight, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    accuracy = instruction_check(encoder, tokenizer, clip, pool, 0)
    assert 0.0 <= accuracy <= 1.0
