"""The systems under evaluation, behind one call: ours (Editor), the InstructPix2Pix baseline
and the copy of the input (the trivial system: it changes nothing, so it scores best on every
content-preservation metric and shows what "good" L1, CLIP-I and DINO are worth).

Every edit is written to disk as it finishes (image, region, and a JSON record of the
descriptions used), and a rerun reads it back instead of editing again: an interrupted
evaluation resumes, and its scores equal an uninterrupted run's.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from components.editing import Editor
from components.evaluation.baseline import InstructPix2PixBaseline


@dataclass(frozen=True)
class EditRecord:
    """What one system did to one input."""

    id: str
    instruction: str
    t_o: str  # "" for the baseline, which reads the instruction alone
    t_e: str
    t_o_source: str  # who wrote t_o, as Editor.edit says ("given": the benchmark's caption)
    t_e_source: str  # who wrote t_e, as Editor.edit says; "none" for systems that read neither
    region_fraction: float  # share of pixels repainted (baseline: 1.0, no region; copy: 0.0)


def case_seed(seed: int, case_id: str) -> int:
    """One seed per case, stable across runs and machines."""
    return seed * 1_000_003 + zlib.crc32(case_id.encode())


class EditCache:
    """`folder/<id>.png`, `<id>-region.png` and `<id>.json` per edited input."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def get(self, case_id: str) -> tuple[Image.Image, Image.Image | None, EditRecord] | None:
        record = self.folder / f"{case_id}.json"
        if not record.is_file():
            return None
        region = self.folder / f"{case_id}-region.png"
        return (
            Image.open(self.folder / f"{case_id}.png").convert("RGB"),
            Image.open(region).convert("L") if region.is_file() else None,
            EditRecord(**json.loads(record.read_text())),
        )

    def put(self, image: Image.Image, region: Image.Image | None, record: EditRecord) -> None:
        image.save(self.folder / f"{record.id}.png")
        if region is not None:
            region.save(self.folder / f"{record.id}-region.png")
        temporary = self.folder / f"{record.id}.json.tmp"  # the record last, atomically:
        temporary.write_text(json.dumps(asdict(record)))  # it marks the edit as finished
        temporary.replace(self.folder / f"{record.id}.json")


EditFn = Callable[..., tuple[Image.Image, Image.Image | None, EditRecord]]


class CachedSystem:
    """A system's edit function behind its on-disk cache: each case is edited once."""

    def __init__(self, edit: EditFn, cache: EditCache) -> None:
        """`edit(image, instruction, case_id, t_o)`; t_o is None where the benchmark has none."""
        self.edit, self.cache = edit, cache

    def __call__(
        self, image: Image.Image, instruction: str, case_id: str, t_o: str | None = None
    ) -> tuple[Image.Image, Image.Image | None, EditRecord]:
        cached = self.cache.get(case_id)
        if cached is not None:
            return cached
        edited, region, record = self.edit(image, instruction, case_id, t_o)
        self.cache.put(edited, region, record)
        return edited, region, record


def edit_ours(
    editor: Editor, image: Image.Image, instruction: str, case_id: str, t_o: str | None, seed: int
) -> tuple[Image.Image, Image.Image, EditRecord]:
    """Our edit, with the descriptions written as at inference (paper §3.1) by the editor
    itself: t_o is the benchmark's caption where it has one (Emu Edit), else the captioner's."""
    result = editor.edit(image, instruction, t_o, seed=case_seed(seed, case_id))
    fraction = float(np.asarray(result.mask, dtype=np.float64).mean()) / 255
    record = EditRecord(
        case_id,
        instruction,
        result.original_description,
        result.target_description,
        result.original_source,
        result.target_source,
        fraction,
    )
    return result.image, result.mask, record


def edit_baseline(
    baseline: InstructPix2PixBaseline,
    image: Image.Image,
    instruction: str,
    case_id: str,
    t_o: str | None,
    seed: int,
) -> tuple[Image.Image, None, EditRecord]:
    """InstructPix2Pix reads the instruction alone: t_o is not used."""
    edited = baseline.edit(image, instruction, case_seed(seed, case_id))
    return edited, None, EditRecord(case_id, instruction, "", "", "none", "none", 1.0)


def copy_of_input(
    image: Image.Image, instruction: str, case_id: str, t_o: str | None = None
) -> tuple[Image.Image, None, EditRecord]:
    """The trivial system: the output is the input. Nothing to cache: it costs nothing."""
    return image.copy(), None, EditRecord(case_id, instruction, "", "", "none", "none", 0.0)
