"""Shared fixtures: images made in memory, captioned folders, the Prefect test harness, the zoo,
and copies of the project for tests that run `dvc` and `regionedit` commands in it."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from components.data.images import ImageLimits

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub, even by mistake

LIMITS = ImageLimits(min_side=16, max_pixels=1_000_000)
ROOT = Path(__file__).resolve().parents[1]


def sh(cwd: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    """A command with this interpreter's scripts (dvc, regionedit) first on PATH."""
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def set_params(repo: Path, **changes: object) -> None:
    """params.yaml edits written as section__key=value."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        params[section][key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def image_bytes(image: Image.Image, fmt: str = "PNG", **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def noise_image(seed: int, size: tuple[int, int] = (48, 32)) -> Image.Image:
    """A distinct RGB picture per seed (so no two are duplicates)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def write_folder(root: Path, files: dict[str, bytes], captions: list[tuple[str, str]]) -> Path:
    """A captioned folder source: the files plus captions.csv with the given rows."""
    root.mkdir(parents=True, exist_ok=True)
    for name, payload in files.items():
        (root / name).write_bytes(payload)
    with (root / "captions.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "caption"])
        writer.writerows(captions)
    return root


@pytest.fixture(scope="session")
def prefect_harness():
    """A real, temporary Prefect API for tests that run flows."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny model zoo (seed 0), built once per session; tests only read it."""
    from components.zoo.build import build_zoo

    return build_zoo(tmp_path_factory.mktemp("zoo"), seed=0)


@pytest.fixture(scope="session")
def zoo_params(zoo: dict[str, Path]):
    """The embedded default params, pointed at the session's zoo, with few denoising steps."""
    from components.config import MethodConfig, ModelsConfig, Params

    models = ModelsConfig(
        zoo=str(Path(zoo["clip"]).parent),
        clip=f"local-dir:{zoo['clip']}",
        instruction_encoder=str(zoo["t5"]),
        inpainting=str(zoo["sd-inpainting"]),
        captioner=str(zoo["captioner"]),
        writer=str(zoo["writer"]),
        metric_clip=f"local-dir:{zoo['metric-clip']}",
        dino=str(zoo["dino"]),
        baseline=str(zoo["ip2p"]),
    )
    return Params(models=models, method=MethodConfig(steps=2))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The working tree as git sees it (tracked + untracked, not ignored), as a new repo."""
    files = sh(ROOT, "git", "ls-files", "-co", "--exclude-standard", "-z").stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (tmp_path / "repo" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp_path / "repo" / name)
    repo = tmp_path / "repo"
    sh(repo, "git", "init", "-q")
    return repo
