"""Shared fixtures: images made in memory, captioned folders, the Prefect test harness, the zoo,
copies of the project for tests that run `dvc` and `regionedit` commands in it, and background
processes (servers, a second training node) on loopback."""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# Under `pytest -n N` the workers share the machine's cores: each worker, and every process it
# starts (dvc stages, trainers, servers), takes its share of threads rather than all of them.
if workers := os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(workers))))

import numpy as np  # noqa: E402  (after the thread share: numpy and torch read it on import)
import pytest  # noqa: E402
import yaml
from PIL import Image

from components.data.images import ImageLimits

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub, even by mistake

LIMITS = ImageLimits(min_side=16, max_pixels=1_000_000)
ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files that hold end-to-end (`slow`) tests first, each file's tests kept together and
    in order: under `pytest -n 2 --dist loadfile` the longest files start at once and the
    workers finish together."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


def scripts_env(**extra: str) -> dict[str, str]:
    """This environment with this interpreter's scripts (dvc, regionedit, prefect) first on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return os.environ | {"PATH": path} | extra


def sh(cwd: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    """A command with this interpreter's scripts first on PATH."""
    done = subprocess.run(command, cwd=cwd, env=scripts_env(), capture_output=True, text=True)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(ready: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    raise TimeoutError(f"{what} not ready after {timeout} s")


def http_status(url: str) -> int:
    """The status a GET of `url` answers with; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


@contextmanager
def background(command: list[str], log: Path, **popen: object) -> Iterator[subprocess.Popen]:
    """A process in a session of its own (so its whole tree can be signalled), its output in
    `log`; stopped with everything it started on the way out."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **popen
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def http_server(command: list[str], health: str, log: Path, **popen: object) -> Iterator[None]:
    """A server started in the background, once `health` answers 200; fails with its log if it
    exits first."""
    with background(command, log, **popen) as server:
        wait_until(lambda: http_status(health) == 200 or server.poll() is not None, command[0])
        assert server.poll() is None, log.read_text()[-3000:]
        yield


def set_params(repo: Path, **changes: object) -> None:
    """params.yaml edits written as section__key=value (section__sub__key=value for nested keys)."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        *sections, key = dotted.split("__")
        node = params
        for section in sections:
            node = node[section]
        node[key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


# A world small enough for a test of the stages (the default trains for minutes): a handful of
# training scenes, test sessions and held-out checks, on the world's release.
SMALL_WORLD = {
    "world__scenes": 6,
    "world__test_count": 3,
    "world__checks": 2,
    "prepare__workers": 1,
    **{f"scales__{scale}M": scale + 1 for scale in range(1, 6)},  # 2 to 6 samples
    "train__length": "steps",
    "train__max_steps": 20,
    "train__checkpoint_every": 10,
    "train__image_every": 10,
    "ablations__zero": {"no-clip": ["beta"]},  # one of the loss ablations through its stage
}


def set_small_world(repo: Path, **changes: object) -> None:
    """SMALL_WORLD in `repo`'s params.yaml, with `changes` on top."""
    set_params(repo, **(SMALL_WORLD | changes))


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
    from components.random_models.build import build_zoo

    return build_zoo(tmp_path_factory.mktemp("zoo"), seed=0)


@pytest.fixture(scope="session")
def world_zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The world's models (seed 0) trained two steps each, once per session: their formats and
    loaders are real, their outputs noise."""
    from components.config import WorldZooConfig
    from components.world.zoo.build import build_world_zoo
    from components.world.zoo.resumable import RunSettings

    tiny = WorldZooConfig(
        scenes=32,
        clip_steps=2,
        metric_clip_steps=2,
        instruction_steps=2,
        vae_steps=2,
        unet_steps=2,
        checks=2,
    )
    folder = tmp_path_factory.mktemp("world")
    trained = build_world_zoo(folder, 0, 64, tiny, RunSettings(progress=False))
    return {name: model.path for name, model in trained.items()}


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
