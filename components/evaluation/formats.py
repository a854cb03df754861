"""The two benchmarks' published file formats, written: one writer each, for every set we make.

Emu Edit: a parquet file with the Hugging Face dataset's columns, types and features record.
MagicBrush: the official test folder (`test/edit_sessions.json`, `test/images/<img_id>/…png`,
and the description files `test/global_descriptions.json` / `test/local_descriptions.json`
that CLIP-T reads). The demo sets (demo_benchmarks) and the world's test sets
(components/world/testsets) both go through these, so both load with the same loaders.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

HF_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
EMU_EDIT_FIELDS = (
    ("instruction", pa.string()),
    ("image", HF_IMAGE),
    ("task", pa.string()),
    ("split", pa.string()),
    ("idx", pa.int64()),
    ("hash", pa.string()),
    ("input_caption", pa.string()),
    ("output_caption", pa.string()),
)
EMU_EDIT_TASKS = ("add", "remove", "color", "local", "background", "global")
EMU_EDIT_FILE = "test-00000-of-00001.parquet"


def hf_schema(fields: Sequence[tuple[str, pa.DataType]]) -> pa.Schema:
    """The schema with the features record `datasets` writes, so that `load_dataset` reads each
    {bytes, path} column as an Image and the others as Values."""
    features = {
        name: {"_type": "Image"} if kind == HF_IMAGE else {"dtype": str(kind), "_type": "Value"}
        for name, kind in fields
    }
    metadata = {"huggingface": json.dumps({"info": {"features": features}})}
    return pa.schema(list(fields), metadata=metadata)


EMU_EDIT_SCHEMA = hf_schema(EMU_EDIT_FIELDS)


def image_cell(png: bytes) -> dict[str, bytes | None]:
    """A Hugging Face Image cell holding the picture itself."""
    return {"bytes": png, "path": None}


def emu_edit_row(
    idx: int, png: bytes, instruction: str, task: str, input_caption: str, output_caption: str
) -> dict[str, object]:
    """One test row in Emu Edit's columns; `hash` is the input PNG's SHA-256."""
    return {
        "instruction": instruction,
        "image": image_cell(png),
        "task": task,
        "split": "test",
        "idx": idx,
        "hash": hashlib.sha256(png).hexdigest(),
        "input_caption": input_caption,
        "output_caption": output_caption,
    }


def write_emu_edit(
    out: Path, rows: list[dict[str, object]], schema: pa.Schema = EMU_EDIT_SCHEMA
) -> Path:
    """Write `rows` to `out/test-00000-of-00001.parquet` and return that file."""
    out.mkdir(parents=True, exist_ok=True)
    file = out / EMU_EDIT_FILE
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), file)
    return file


@dataclass(frozen=True)
class MagicBrushTurnFiles:
    """One turn as the official test set stores it; its input is the previous turn's output."""

    output: Image.Image  # the ground truth
    mask: Image.Image  # "L", white = edited
    instruction: str
    global_description: str  # of the output
    local_description: str  # of what the turn put in the mask
    extra: dict[str, object] = field(default_factory=dict)  # more keys of its session entry


@dataclass(frozen=True)
class MagicBrushSessionFiles:
    img_id: str
    input: Image.Image
    global_description: str  # of the input
    turns: tuple[MagicBrushTurnFiles, ...]


def write_magicbrush(out: Path, sessions: Iterable[MagicBrushSessionFiles]) -> Path:
    """Write `sessions` in the official layout under `out/test`, one at a time, and return
    `out`. Turn k's input is turn k-1's output (the benchmark's own chaining)."""
    shutil.rmtree(out / "test", ignore_errors=True)  # no session of an older write may survive
    edit_sessions, global_descriptions, local_descriptions = {}, {}, {}
    for session in sessions:
        img_id = session.img_id
        folder = out / "test" / "images" / img_id
        folder.mkdir(parents=True, exist_ok=True)
        source = f"{img_id}-input.png"
        session.input.save(folder / source)
        global_descriptions[img_id] = {source: session.global_description}
        local_descriptions[img_id], entries = {}, []
        for k, turn in enumerate(session.turns, start=1):
            output, mask = f"{img_id}-output{k}.png", f"{img_id}-mask{k}.png"
            turn.output.save(folder / output)
            turn.mask.save(folder / mask)
            global_descriptions[img_id][output] = turn.global_description
            local_descriptions[img_id][output] = turn.local_description
            entries.append(
                {
                    "input": source,
                    "output": output,
                    "mask": mask,
                    "instruction": turn.instruction,
                    **turn.extra,
                }
            )
            source = output
        edit_sessions[img_id] = entries
    for name, content in (
        ("edit_sessions.json", edit_sessions),
        ("global_descriptions.json", global_descriptions),
        ("local_descriptions.json", local_descriptions),
    ):
        (out / "test" / name).write_text(json.dumps(content, indent=2) + "\n")
    return out
