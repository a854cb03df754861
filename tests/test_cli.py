"""`regionedit prepare` runs the real Prefect flow and prints the summary line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from flows.cli import app
from tests.conftest import image_bytes, noise_image, write_folder

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
