"""`regionedit prepare` runs the real Prefect flow and prints the summary line; a newcomer's
`regionedit edit` works with the default profile and no other flag."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from components.data.demo_edits import demo_photo
from components.describe.prompts import load_prompts
from components.models.loading import load_chat_model
from flows.cli import app
from tests.conftest import ROOT, image_bytes, noise_image, sh, write_folder

runner = CliRunner()


def test_prepare_command_runs_the_flow(tmp_path, prefect_harness):
    source = write_folder(
        tmp_path / "src",
        {"a.png": image_bytes(noise_image(1)), "b.png": image_bytes(noise_image(2)), "c.png": b""},
        [("a.png", "one"), ("b.png", "two"), ("c.png", "three")],
    )
    params = tmp_path / "params.yaml"
    params.write_text("prepare:\n  min_side: 8\n")
    result = runner.invoke(
        app,
        [
            "prepare",
            "--source",
            str(source),
            "--out",
            str(tmp_path / "out"),
            "--metrics",
            str(tmp_path / "m.json"),
            "--workers",
            "2",
            "--params",
            str(params),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "inputs 3 · accepted 2 · rejected 1 · duplicates 0" in result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["rejected_by_reason"] == {"empty_file": 1}


def test_bad_params_exit_with_a_message(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("prepare:\n  workerz: 2\n")
    result = runner.invoke(app, ["prepare", "--params", str(params)])
    assert result.exit_code == 2
    assert "prepare.workerz: unknown key" in result.output


def test_bad_source_exits_with_a_message(tmp_path):
    result = runner.invoke(
        app,
        ["prepare", "--source", str(tmp_path / "nowhere"), "--params", str(tmp_path / "none.yaml")],
    )
    assert result.exit_code == 2 and "none.yaml" in result.output


CAPTION = "an orange tabby cat lying down"  # what the taught captioner answers for the photo


def teach_caption(captioner: Path, image: Image.Image, caption: str, out: Path) -> Path:
    """A copy of the zoo's random captioner, fine-tuned until greedy decoding of the describe
    prompt answers `caption` for `image`: a real model whose caption is known in advance."""
    processor, model = load_chat_model(str(captioner), vision=True)
    messages = load_prompts("v1").caption_messages({"type": "image"})
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    answer = json.dumps({"description": caption}) + "<|im_end|>"
    inputs = processor(text=[prompt + answer], images=[image], return_tensors="pt")
    start = processor(text=[prompt], images=[image], return_tensors="pt")["input_ids"].shape[1]
    targets = inputs["input_ids"][0, start:]
    labels = inputs["input_ids"].clone()
    labels[:, :start] = -100  # learn the answer only
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(300):
        step = model(**inputs, labels=labels)
        if step.loss < 0.1 and (step.logits[0, start - 1 : -1].argmax(-1) == targets).all():
            break
        optimizer.zero_grad()
        step.loss.backward()
        optimizer.step()
    else:
        pytest.fail(f"the captioner did not learn {caption!r} in 300 steps")
    shutil.copytree(captioner, out)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def newcomer(zoo, world_zoo, tmp_path_factory) -> Path:
    """A folder as a newcomer has it after `dvc repro zoo`: the default params.yaml, the tiny
    zoo in models/zoo (its captioner taught one caption), world models in models/world (here
    trained a few steps, in the release's layout), and a JPEG photo of a cat."""
    root = tmp_path_factory.mktemp("newcomer")
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    demo_photo("chelsea.png").resize((120, 80)).save(root / "photo.jpg", quality=90)
    models = root / "models" / "zoo"
    models.mkdir(parents=True)
    for name, folder in zoo.items():
        if name != "captioner":
            (models / name).symlink_to(folder, target_is_directory=True)
    (root / "models" / "world").symlink_to(world_zoo["clip"].parent, target_is_directory=True)
    photo = Image.open(root / "photo.jpg").convert("RGB")
    teach_caption(zoo["captioner"], photo, CAPTION, models / "captioner")
    return root


def test_edit_with_the_default_profile_and_no_other_flag(newcomer):
    command = ["regionedit", "edit", "--image", "photo.jpg", "--instruction"]
    done = sh(newcomer, *command, "turn the cat into a dog")
    lines = done.stdout.splitlines()
    assert f"t_o: '{CAPTION}' (captioner models/zoo/captioner on the transformers backend)" in lines
    assert "t_e: 'an orange tabby dog lying down' (template writer template-v1)" in lines
    assert "edited: edited.png · region: edited-region.png" in lines
    size = Image.open(newcomer / "photo.jpg").size
    assert Image.open(newcomer / "edited.png").size == size
    assert Image.open(newcomer / "edited-region.png").size == size
    assert "accelerate" not in done.stdout + done.stderr  # diffusers warns when it is missing


def test_edit_without_the_zoo_names_the_folder_and_the_command(tmp_path, monkeypatch):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "photo.jpg").write_bytes(image_bytes(noise_image(0, (64, 64)), "JPEG"))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app, ["edit", "--image", "photo.jpg", "--instruction", "turn the cat into a dog"]
    )
    assert result.exit_code == 2, result.output
    assert "models/world/clip" in result.output and "git checkout -- models/world" in result.output


EXITING = """
import atexit, sys, threading, time
from pathlib import Path
from flows.cli_base import exit_now

folder = Path(sys.argv[1])
unclosed = (folder / "unclosed.txt").open("w")
unclosed.write("written, never closed")
atexit.register(lambda: (folder / "atexit.txt").write_text("hook ran"))
def late():
    time.sleep(0.5)
    (folder / "thread.txt").write_text("thread finished")
threading.Thread(target=late).start()
print("buffered", end="")
exit_now(3)
"""


def test_exit_now_does_what_the_interpreters_exit_does(tmp_path):
    """The executable's quick exit (flows/cli_base.py) keeps the exit code, waits for threads
    that are not daemons, runs atexit hooks and flushes what was written and never closed."""
    done = sh(tmp_path, "python", "-c", EXITING, str(tmp_path), check=False)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "buffered"
    assert (tmp_path / "unclosed.txt").read_text() == "written, never closed"
    assert (tmp_path / "atexit.txt").read_text() == "hook ran"
    assert (tmp_path / "thread.txt").read_text() == "thread finished"


def test_the_executable_keeps_its_exit_codes(tmp_path):
    """`regionedit` as installed: 0 for help, 2 with `error:` for input the user can fix, 2
    for an unknown command (click's usage error)."""
    assert "use-profile" in sh(tmp_path, "regionedit", "--help").stdout
    missing = sh(tmp_path, "regionedit", "use-profile", "missing.yaml", check=False)
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: missing.yaml: cannot read params file")
    assert sh(tmp_path, "regionedit", "no-such-command", check=False).returncode == 2
