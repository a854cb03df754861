"""The tiny zoo loads back through the one loader per family, with the shapes the method needs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from components.data.scenes import scene
from components.models.loading import (
    ModelLoadError,
    load_chat_model,
    load_clip,
    load_dino,
    load_instruction_encoder,
    local_folder,
)
from components.random_models.build import build_zoo
from flows.cli import app

CAPTION = "a large red circle at the top left on a blue background"


def weight_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.safetensors"))}


@pytest.mark.parametrize("prefix", ["local-dir:", ""])
def test_clip_gives_pooled_embeddings_and_an_8x8_patch_grid(zoo, prefix):
    model, preprocess, tokenizer = load_clip(f"{prefix}{zoo['clip']}", None)
    images = torch.stack([preprocess(scene(0, i)[0]) for i in range(2)])
    assert images.shape == (2, 3, 64, 64)
    text = tokenizer([CAPTION, "remove the circle"])
    assert text.shape == (2, 77)
    assert model.encode_image(images).shape == (2, 32)
    assert model.encode_text(text).shape == (2, 32)
    model.visual.output_tokens = True
    pooled, tokens = model.visual(images)
    assert pooled.shape == (2, 32) and tokens.shape == (2, 64, 64)


def test_metric_clip_is_shaped_like_vit_b_32(zoo):
    model, preprocess, tokenizer = load_clip(f"local-dir:{zoo['metric-clip']}", None)
    images = preprocess(scene(0, 0)[0]).unsqueeze(0)
    assert images.shape == (1, 3, 224, 224)
    model.visual.output_tokens = True
    assert model.visual(images)[1].shape == (1, 7 * 7, 64)
    assert model.encode_text(tokenizer([CAPTION])).shape == (1, 32)


def test_instruction_encoder_round_trips_a_caption_and_is_wider_than_clip(zoo):
    tokenizer, model = load_instruction_encoder(str(zoo["t5"]), trust_remote_code=False)
    for text in (CAPTION, "Change the cat into a Zebra, 42 times?"):
        ids = tokenizer(text).input_ids
        assert ids[-1] == tokenizer.eos_token_id and tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids, skip_special_tokens=True) == text
    batch = tokenizer([CAPTION, "remove the cat"], return_tensors="pt", padding=True)
    states = model(**batch).last_hidden_state
    assert states.shape == (2, batch.input_ids.shape[1], 48)


def test_writer_follows_the_chat_template_and_generates(zoo):
    tokenizer, model = load_chat_model(str(zoo["writer"]), trust_remote_code=False)
    messages = [
        {"role": "system", "content": "You write image editing instructions."},
        {"role": "user", "content": CAPTION},
    ]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt.startswith("<|im_start|>system\nYou write") and prompt.endswith(
        "<|im_start|>assistant\n"
    )
    batch = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**batch, max_new_tokens=4)
    assert batch["input_ids"].shape[1] < out.shape[1] <= batch["input_ids"].shape[1] + 4
    assert isinstance(tokenizer.decode(out[0], skip_special_tokens=True), str)


def test_captioner_sees_an_image_and_generates(zoo):
    processor, model = load_chat_model(str(zoo["captioner"]), vision=True)
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]}
    ]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    batch = processor(text=[prompt], images=[scene(0, 0)[0]], return_tensors="pt")
    image_tokens = (batch["input_ids"] == model.config.image_token_id).sum().item()
    assert image_tokens == 16  # 256 px -> 112 px: 8x8 patches, merged 2x2
    out = model.generate(**batch, max_new_tokens=4)
    assert out.shape[1] > batch["input_ids"].shape[1]


def test_dino_takes_magicbrush_crops_and_gives_cls_plus_patches(zoo):
    processor, model = load_dino(str(zoo["dino"]))
    pixels = processor(images=[scene(0, 0)[0].resize((300, 200))], return_tensors="pt")
    assert pixels["pixel_values"].shape == (1, 3, 224, 224)
    assert model(**pixels).last_hidden_state.shape == (1, 1 + 14 * 14, 48)


def test_same_seed_gives_identical_weights_another_seed_different_ones(zoo, tmp_path):
    first = weight_files(zoo["clip"].parent)
    assert len(first) >= 9 and {Path(name).parts[0] for name in first} == set(zoo)
    assert weight_files(build_zoo(tmp_path / "again", seed=0)["clip"].parent) == first
    other = weight_files(build_zoo(tmp_path / "other", seed=1)["clip"].parent)
    assert other.keys() == first.keys()
    assert all(other[name] != first[name] for name in first)


@pytest.mark.parametrize(
    ("model", "pickle", "load"),
    [
        ("t5", "pytorch_model.bin", lambda path: load_instruction_encoder(path)),
        ("clip", "open_clip_pytorch_model.bin", lambda path: load_clip(f"local-dir:{path}")),
    ],
)
def test_a_folder_with_only_pickled_weights_is_refused(zoo, tmp_path, model, pickle, load):
    folder = shutil.copytree(zoo[model], tmp_path / model)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    torch.save({"weight": torch.zeros(1)}, folder / pickle)
    with pytest.raises(ModelLoadError, match="only pickled weights") as error:
        load(str(folder))
    assert str(folder) in str(error.value) and pickle in str(error.value)


@pytest.mark.parametrize(
    "load",
    [
        lambda path: load_clip(f"local-dir:{path}"),
        lambda path: load_instruction_encoder(path),
        lambda path: load_chat_model(path, vision=True),
        lambda path: load_dino(path),
    ],
)
def test_a_missing_local_folder_says_how_to_build_the_zoo(tmp_path, load):
    missing = tmp_path / "models" / "zoo" / "absent"
    with pytest.raises(ModelLoadError, match="regionedit zoo") as error:
        load(str(missing))
    assert str(missing) in str(error.value)


def test_paths_are_local_and_ids_are_not():
    assert local_folder("models/zoo/t5") == Path("models/zoo/t5")
    assert local_folder("./t5") == Path("t5") and local_folder("/opt/t5") == Path("/opt/t5")
    assert local_folder("google/flan-t5-base") is None and local_folder("ViT-L-14") is None


def test_zoo_command_builds_every_model(tmp_path, prefect_harness):
    params = tmp_path / "params.yaml"
    params.write_text(f"seed: 3\nmodels:\n  zoo: {tmp_path / 'zoo'}\n")
    result = CliRunner().invoke(app, ["zoo", "--params", str(params)])
    assert result.exit_code == 0, result.output
    assert "zoo: 10 models" in result.output
    generators = {"sd-inpainting", "sdxl-inpainting", "flux-fill"}
    names = {"clip", "t5", "captioner", "writer", "metric-clip", "dino", "ip2p", *generators}
    assert {p.name for p in (tmp_path / "zoo").iterdir()} == names
