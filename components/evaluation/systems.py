"""The systems under evaluation, behind one call, `system(request)`.

Ours (the trained head) and beside it what no number should be read without (DESIGN §10): the
untrained head (the same seeded head, no checkpoint), three given regions edited by the same
editor (the whole image; a random square of the ground-truth region's area; the ground-truth
region itself, the generator's ceiling), InstructPix2Pix, and the copy of the input (the trivial
system: it changes nothing, so it scores best on every content-preservation metric and shows
what "good" L1, CLIP-I and DINO are worth). Every system that edits with our editor reads the
same t_o and t_e (`SharedDescriptions`), so those systems differ only in the region.

Every edit is written to disk as it finishes (image, region, and a JSON record of the
descriptions used), and a rerun reads it back instead of editing again: an interrupted
evaluation resumes, and its scores equal an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from components.editing import Descriptions, Editor
from components.evaluation.baseline import InstructPix2PixBaseline
from components.evaluation.metrics import changed_region, inside, region_share

GROUND_TRUTH_SYSTEMS = frozenset({"random_area", "ground_truth"})  # they need the region


@dataclass(frozen=True)
class EditRequest:
    """One edit asked of a system."""

    id: str  # the case (or turn) id: it names the cached files and seeds the edit
    image: Image.Image
    instruction: str
    t_o: str | None = None  # the benchmark's caption of the input, where it has one (Emu Edit)
    truth: Image.Image | None = None  # the ground-truth edit region ("L", white), where known


@dataclass(frozen=True)
class EditRecord:
    """What one system did to one input."""

    id: str
    instruction: str
    t_o: str  # "" for the baseline, which reads the instruction alone
    t_e: str
    t_o_source: str  # who wrote t_o, as Editor.describe says ("given": the benchmark's caption)
    t_e_source: str  # who wrote t_e, as Editor.describe says; "none" for systems that read neither
    region_fraction: float  # share of pixels repainted (baseline: changed; copy: 0.0)


Edit = tuple[Image.Image, Image.Image, EditRecord]  # the edited image, its region, the record
System = Callable[[EditRequest], Edit]
RegionChoice = Callable[[EditRequest, int], Image.Image]  # (request, case seed) -> region


def case_seed(seed: int, case_id: str) -> int:
    """One seed per case, stable across runs and machines."""
    return seed * 1_000_003 + zlib.crc32(case_id.encode())


class EditCache:
    """`folder/<id>.png`, `<id>-region.png` and `<id>.json` per edited input."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def get(self, case_id: str) -> Edit | None:
        record = self.folder / f"{case_id}.json"
        if not record.is_file():
            return None
        return (
            Image.open(self.folder / f"{case_id}.png").convert("RGB"),
            Image.open(self.folder / f"{case_id}-region.png").convert("L"),
            EditRecord(**json.loads(record.read_text())),
        )

    def put(self, image: Image.Image, region: Image.Image, record: EditRecord) -> None:
        image.save(self.folder / f"{record.id}.png")
        region.save(self.folder / f"{record.id}-region.png")
        temporary = self.folder / f"{record.id}.json.tmp"  # the record last, atomically:
        temporary.write_text(json.dumps(asdict(record)))  # it marks the edit as finished
        temporary.replace(self.folder / f"{record.id}.json")


class CachedSystem:
    """A system's edit function behind its on-disk cache: each case is edited once."""

    def __init__(self, edit: System, cache: EditCache) -> None:
        self.edit, self.cache = edit, cache

    def __call__(self, request: EditRequest) -> Edit:
        cached = self.cache.get(request.id)
        if cached is not None:
            return cached
        edited = self.edit(request)
        self.cache.put(*edited)
        return edited


class SharedDescriptions:
    """t_o and t_e written once per input (image, instruction, given t_o) by the editor's
    describers, and read by every system that edits with them."""

    def __init__(self, editor: Editor) -> None:
        self.editor = editor
        self.written: dict[tuple, Descriptions] = {}

    def __call__(self, request: EditRequest) -> Descriptions:
        image = request.image
        pixels = hashlib.sha256(image.tobytes()).hexdigest()
        key = (pixels, image.size, image.mode, request.instruction, request.t_o)
        if key not in self.written:
            self.written[key] = self.editor.describe(image, request.instruction, request.t_o)
        return self.written[key]


def edit_with_editor(
    editor: Editor,
    descriptions: SharedDescriptions,
    request: EditRequest,
    seed: int,
    region: RegionChoice | None = None,
) -> Edit:
    """An edit by `editor`: in its head's region (ours, untrained), or in `region(request,
    case seed)` (the region-given systems), to the shared t_o and t_e (paper §3.1: t_o is the
    benchmark's caption where it has one, else the captioner's)."""
    written = descriptions(request)
    case = case_seed(seed, request.id)
    given = None if region is None else region(request, case)
    t_o, t_e = written.original, written.target
    result = editor.edit(request.image, request.instruction, t_o, t_e, seed=case, region=given)
    record = EditRecord(request.id, request.instruction, *written, region_share(result.mask))
    return result.image, result.mask, record


def editor_systems(editor: Editor, untrained: Editor, seed: int) -> dict[str, System]:
    """Ours, the untrained head and the region-given systems, reading one set of t_o and t_e."""
    descriptions = SharedDescriptions(editor)

    def system(head: Editor, region: RegionChoice | None = None) -> System:
        return lambda request: edit_with_editor(head, descriptions, request, seed, region)

    return {
        "ours": system(editor),
        "untrained": system(untrained),
        "whole_image": system(editor, whole_image),
        "random_area": system(editor, random_area),
        "ground_truth": system(editor, ground_truth),
    }


def whole_image(request: EditRequest, seed: int) -> Image.Image:
    """The full image as the region: what repainting everything scores."""
    return Image.new("L", request.image.size, 255)


def ground_truth(request: EditRequest, seed: int) -> Image.Image:
    """The ground-truth edit region at the image's size: the ceiling of the generator."""
    if request.truth is None:
        raise ValueError(f"case {request.id}: no ground-truth region, which this system needs")
    return request.truth.convert("L").resize(request.image.size, Image.Resampling.NEAREST)


def random_area(request: EditRequest, seed: int) -> Image.Image:
    """A region of exactly the ground-truth region's area at a place drawn from the case seed,
    inside the image: a square as near as the pixel count allows (full rows of `side` pixels
    and one partial row), so it differs from the truth in place and shape, never in size."""
    width, height = request.image.size
    area = int(inside(ground_truth(request, seed)).sum())
    pixels = np.zeros((height, width), np.uint8)
    if area:
        side = min(width, max(math.isqrt(area - 1) + 1, -(-area // height)))  # fits the image
        rows, rest = divmod(area, side)
        rng = np.random.default_rng(seed)
        left = int(rng.integers(0, width - side + 1))
        top = int(rng.integers(0, height - rows - (rest > 0) + 1))
        pixels[top : top + rows, left : left + side] = 255
        pixels[top + rows : top + rows + (rest > 0), left : left + rest] = 255
    return Image.fromarray(pixels, "L")


def edit_baseline(baseline: InstructPix2PixBaseline, request: EditRequest, seed: int) -> Edit:
    """InstructPix2Pix reads the instruction alone (t_o is not used) and reports no region: its
    region is the pixels it changed beyond the edit_success tolerance."""
    edited = baseline.edit(request.image, request.instruction, case_seed(seed, request.id))
    region = changed_region(edited, request.image)
    record = EditRecord(
        request.id, request.instruction, "", "", "none", "none", region_share(region)
    )
    return edited, region, record


def copy_of_input(request: EditRequest) -> Edit:
    """The trivial system: the output is the input, the region empty. Nothing to cache."""
    empty = Image.new("L", request.image.size, 0)
    record = EditRecord(request.id, request.instruction, "", "", "none", "none", 0.0)
    return request.image.copy(), empty, record
