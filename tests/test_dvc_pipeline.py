"""`dvc repro prepare` on a fresh copy of the repo: runs, skips, reruns only on its params."""

from __future__ import annotations

import json

import pytest

from tests.conftest import set_params, set_small_world, sh


@pytest.mark.slow
def test_dvc_repro_prepare(repo):
    set_small_world(repo, world__scenes=3)
    sh(repo, "dvc", "repro", "prepare")
    metrics = json.loads((repo / "metrics/prepare.json").read_text())
    assert metrics["inputs"] == 3 == metrics["accepted"]
    assert len(list((repo / "data/prepared/shards").glob("*.tar"))) == 1

    assert "didn't change" in sh(repo, "dvc", "repro", "prepare").stdout
    set_params(repo, scales__1M=1, prepare__workers=2)  # keys prepare does not read
    assert "didn't change" in sh(repo, "dvc", "repro", "prepare").stdout
    set_params(repo, world__scenes=5)
    sh(repo, "dvc", "repro", "prepare")
    assert json.loads((repo / "metrics/prepare.json").read_text())["inputs"] == 5
