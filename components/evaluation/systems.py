"""The systems under evaluation, behind one call: ours (Editor) and the InstructPix2Pix baseline.

Every edit is written to disk as it finishes (image, region, and a JSON record of the
descriptions used), and a rerun reads it back instead of editing again: an interrupted
evaluation resumes, and its scores equal an uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from components.describe.errors import DescribeError
from components.editing import Editor
from components.evaluation.baseline import InstructPix2PixBaseline

FALLBACK_CAPTION = "a photo"  # t_o when the benchmark gives none and the backend cannot caption


@dataclass(frozen=True)
class EditRecord:
    """What one system did to one input."""

    id: str
    instruction: str
    t_o: str  # "" for the baseline, which reads the instruction alone
    t_e: str
    t_o_source: str  # benchmark | captioner | fallback | none
    t_e_source: str  # describer | fallback_instruction | none
    region_fraction: float  # share of pixels repainted (1.0 for the baseline: no region)


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
    """Our edit, with the descriptions written as at inference (paper §3.1)."""
    t_o_source = "benchmark"
    if t_o is None:
        t_o, t_o_source = FALLBACK_CAPTION, "fallback"
        if editor.describer.can_caption:
            with contextlib.suppress(DescribeError):  # then recorded as the fallback caption
                t_o, t_o_source = editor.describer.describe_image(image), "captioner"
    try:
        t_e, t_e_source = editor.describer.target_description(t_o, instruction), "describer"
    except DescribeError:
        t_e, t_e_source = instruction, "fallback_instruction"
    result = editor.edit(image, instruction, t_o, t_e, seed=case_seed(seed, case_id))
    fraction = float(np.asarray(result.mask, dtype=np.float64).mean()) / 255
    record = EditRecord(case_id, instruction, t_o, t_e, t_o_source, t_e_source, fraction)
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
