"""The whole tiny zoo: every model of the embedded default profile, one subfolder each.

The folder names are the ones params.yaml's `models:` section points at.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from components.zoo.chat import build_captioner, build_writer
from components.zoo.clip import build_clip
from components.zoo.flux import build_flux_fill
from components.zoo.inpainting import build_inpainting, build_instruct_pix2pix
from components.zoo.metrics import build_dino, build_metric_clip
from components.zoo.sdxl import build_sdxl_inpainting
from components.zoo.text import build_instruction_encoder

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
