"""`dvc repro prepare` on a fresh copy of the repo: runs, skips, reruns only on its params; and
an edit to the report package reaches only the report stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, set_params, set_small_world, sh


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


def test_an_edit_to_the_report_package_reruns_only_the_report_stage():
    """Which stages list one of the report package's files, or a folder above it, among their
    dependencies (DVC's own reading of dvc.yaml): only `report` may."""
    from dvc.repo import Repo

    files = sorted((ROOT / "components/evaluation/report").glob("*.py"))
    readers = {}
    with Repo(str(ROOT)) as dvc:
        for stage in dvc.index.stages:
            for dep in stage.deps:
                path = Path(dep.fs_path)
                reached = [f.name for f in files if f == path or path in f.parents]
                if reached:
                    readers.setdefault(stage.addressing, set()).update(reached)
    assert set(readers) == {"report"}, readers
    assert readers["report"] == {f.name for f in files}  # and it does read every one
