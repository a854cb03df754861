"""The whole tiny zoo: every model of the embedded default profile, one subfolder each.

The folder names are the ones params.yaml's `models:` section points at.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from components.random_models.chat import build_captioner, build_writer
from components.random_models.clip import build_clip
from components.random_models.flux import build_flux_fill
from components.random_models.inpainting import build_inpainting, build_instruct_pix2pix
from components.random_models.metrics import build_dino, build_metric_clip
from components.random_models.sdxl import build_sdxl_inpainting
from components.random_models.text import build_instruction_encoder

BUILDERS: dict[str, Callable[[Path, int], Path]] = {
    "clip": build_clip,
    "t5": build_instruction_encoder,
    "sd-inpainting": build_inpainting,
    "sdxl-inpainting": build_sdxl_inpainting,
    "flux-fill": build_flux_fill,
    "ip2p": build_instruct_pix2pix,
    "captioner": build_captioner,
    "writer": build_writer,
    "metric-clip": build_metric_clip,
    "dino": build_dino,
}

# each generator family's folder in the zoo (components.generation: GENERATORS)
GENERATOR_FOLDERS = {"sd": "sd-inpainting", "sdxl": "sdxl-inpainting", "flux-fill": "flux-fill"}


def build_zoo(out: Path, seed: int) -> dict[str, Path]:
    """Build every tiny model into `out/<name>`; the same seed gives byte-identical files."""
    paths = {}
    for name, build in BUILDERS.items():
        folder = out / name
        shutil.rmtree(folder, ignore_errors=True)  # no stale file of an older build may survive
        paths[name] = build(folder, seed)
    return paths


def summary_line(out: Path, paths: dict[str, Path]) -> str:
    """What `build_zoo` built, in one line (what `regionedit zoo` prints): names, folder, size."""
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return f"zoo: {len(paths)} models ({', '.join(paths)}) in {out}, {size / 1e6:.1f} MB"
