"""`dvc repro prepare` on a fresh copy of the repo: runs, skips, reruns only on its params."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def sh(cwd: Path, *command: str) -> str:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def set_params(repo: Path, **changes: object) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        params[section][key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The working tree as git sees it (tracked + untracked, not ignored), as a new repo."""
    files = sh(ROOT, "git", "ls-files", "-co", "--exclude-standard", "-z").split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (tmp_path / "repo" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp_path / "repo" / name)
    repo = tmp_path / "repo"
    sh(repo, "git", "init", "-q")
    return repo


@pytest.mark.slow
def test_dvc_repro_prepare(repo):
    set_params(repo, prepare__demo_scenes=3, prepare__workers=1)
    sh(repo, "dvc", "repro", "prepare")
    metrics = json.loads((repo / "metrics/prepare.json").read_text())
    assert metrics["inputs"] == 21 + 3 == metrics["accepted"]
    assert len(list((repo / "data/prepared/shards").glob("*.tar"))) == 1

    assert "didn't change" in sh(repo, "dvc", "repro", "prepare")
    set_params(repo, scales__1M=1, prepare__workers=2)  # keys prepare does not read
    assert "didn't change" in sh(repo, "dvc", "repro", "prepare")
    set_params(repo, prepare__demo_scenes=5)
    sh(repo, "dvc", "repro", "prepare")
    assert json.loads((repo / "metrics/prepare.json").read_text())["inputs"] == 26
