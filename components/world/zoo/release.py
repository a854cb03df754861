"""The world's release: its frozen models as a versioned folder in git (README, The world's
release).

`write_release` copies the trained models into the release folder with every safetensors
file in fp16 (the loaders cast back to fp32 on load), and writes `manifest.json`: what trained
the release (budget, seed, steps, wall time, device), each model's checks measured on the
release itself, each model's check curve, and a sha256 per file. `verify_release` tells the
files whose digest no longer matches.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from components.world.zoo.resumable import TrainingState

MANIFEST = "manifest.json"
CURVES = "curves.png"


def write_release(
    trained: Path,
    release: Path,
    states: dict[str, TrainingState],
    trained_by: dict[str, Any],
) -> Path:
    """`trained`'s model folders as fp16 in `release`, with a manifest of `states` and
    `trained_by` (the budget and seed); checks are added by `record_checks`."""
    if release.exists():
        shutil.rmtree(release)
    for name in states:
        for source in sorted((trained / name).rglob("*")):
            target = release / name / source.relative_to(trained / name)
            if source.is_dir():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.suffix == ".safetensors":
                tensors = {k: _half(v) for k, v in load_file(source).items()}
                save_file(tensors, target, metadata={"format": "pt"})
            else:
                shutil.copyfile(source, target)
    manifest = {
        "trained_by": trained_by
        | {
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
            "torch": torch.__version__,
        },
        "models": {
            name: {
                "wall_s": round(state.elapsed(), 1),
                "curve": state.curve,
            }
            for name, state in states.items()
        },
        "checks": {},
    }
    _write_manifest(release, manifest)
    return release


def record_checks(release: Path, checks: dict[str, float]) -> dict[str, Any]:
    """Add the checks measured on the release to its manifest (and re-digest its files)."""
    manifest = read_manifest(release)
    manifest["checks"] = checks
    _write_manifest(release, manifest)
    return manifest


def read_manifest(release: Path) -> dict[str, Any]:
    path = release / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{release}: no {MANIFEST}; the world's release is committed in git "
            f"(`git checkout -- {release}`), or retrained by `regionedit world-zoo --release`"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def verify_release(release: Path) -> list[str]:
    """Files of `release` missing, added or changed since its manifest was written."""
    listed = read_manifest(release)["files"]
    present = _digests(release)
    return sorted(
        name for name in listed.keys() | present.keys() if listed.get(name) != present.get(name)
    )


def release_size(release: Path) -> int:
    return sum(f.stat().st_size for f in release.rglob("*") if f.is_file())


def _write_manifest(release: Path, manifest: dict[str, Any]) -> None:
    manifest["files"] = _digests(release)
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (release / MANIFEST).write_text(text, encoding="utf-8")


def _digests(release: Path) -> dict[str, str]:
    return {
        str(path.relative_to(release)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(release.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }


def _half(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.half().contiguous() if tensor.is_floating_point() else tensor.contiguous()
