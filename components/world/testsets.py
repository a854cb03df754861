"""The world's test sets in both benchmarks' published formats: what `regionedit world` writes.

Session i: turn 1's kind cycles through KINDS and its distractor flag alternates every
len(KINDS) sessions, so every kind is half with a distractor and half without; every
MULTI_TURN_EVERY-th session has a second turn that edits the first's rendered target, so that
MagicBrush's multi-turn setting has data. MagicBrush gets every session; Emu Edit, a
single-turn benchmark, gets each session's first turn. Both carry what only a test set knows:
the ground-truth region (MagicBrush's mask; Emu Edit's extra `mask` column), the rendered
target (MagicBrush's output; Emu Edit's `target` column), the kind and the distractor flag.
Same seed, same bytes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from components.data.images import encode_png
from components.evaluation.formats import (
    EMU_EDIT_FIELDS,
    HF_IMAGE,
    MagicBrushSessionFiles,
    MagicBrushTurnFiles,
    emu_edit_row,
    hf_schema,
    image_cell,
    write_emu_edit,
    write_magicbrush,
)
from components.world.edits import KINDS, TEST_RNG, WorldEdit, world_session

EMU_EDIT_TASK = {"recolour": "color", "remove": "remove", "reshape": "local"}  # Emu Edit's names
MULTI_TURN_EVERY = 4  # one session in four has two turns
WORLD_EMU_EDIT_SCHEMA = hf_schema(
    [*EMU_EDIT_FIELDS, ("distractor", pa.bool_()), ("mask", HF_IMAGE), ("target", HF_IMAGE)]
)


def world_sessions(seed: int, count: int) -> list[tuple[WorldEdit, ...]]:
    """The `count` sessions of the test set of `seed`."""
    return [
        world_session(
            seed,
            index,
            KINDS[index % len(KINDS)],
            distractor=index // len(KINDS) % 2 == 1,
            turns=2 if index % MULTI_TURN_EVERY == MULTI_TURN_EVERY - 1 else 1,
        )
        for index in range(count)
    ]


def write_world(out: Path, seed: int, count: int, side: int) -> dict[str, object]:
    """Write `out/magicbrush`, `out/emu_edit` and `out/world.json` (what the set is), and return
    what world.json says."""
    sessions = world_sessions(seed, count)
    write_magicbrush(
        out / "magicbrush", (_magicbrush_session(i, s, side) for i, s in enumerate(sessions))
    )
    rows = [_emu_edit_row(idx, s[0], side) for idx, s in enumerate(sessions)]
    write_emu_edit(out / "emu_edit", rows, WORLD_EMU_EDIT_SCHEMA)
    summary = {
        "seed": seed,
        "count": count,
        "side": side,
        "rng": TEST_RNG,  # a namespace of its own: training scenes never coincide with these
        "emu_edit": _counts([s[0] for s in sessions]),
        "magicbrush": {
            "sessions": count,
            "multi_turn_sessions": sum(len(s) > 1 for s in sessions),
            **_counts([edit for s in sessions for edit in s]),
        },
    }
    (out / "world.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def summary_lines(out: Path, summary: dict) -> list[str]:
    """What `write_world` wrote, in words (what `regionedit world` prints): the set, then each
    benchmark's sessions, edits by kind and share with a distractor."""
    lines = [
        f"world (seed {summary['seed']}, {summary['side']} px) in {out}: "
        "magicbrush, emu_edit, world.json"
    ]
    for name in ("magicbrush", "emu_edit"):
        counts = summary[name]
        sessions = (
            f"{counts['sessions']} sessions ({counts['multi_turn_sessions']} of two turns), "
            if "sessions" in counts
            else ""
        )
        kinds = " · ".join(f"{kind} {n}" for kind, n in counts["kinds"].items())
        lines.append(
            f"{name}: {sessions}{counts['edits']} edits ({kinds}), "
            f"{counts['distractor_share']:.0%} with a distractor"
        )
    return lines


def _magicbrush_session(
    index: int, session: tuple[WorldEdit, ...], side: int
) -> MagicBrushSessionFiles:
    turns = tuple(
        MagicBrushTurnFiles(
            edit.target_image(side),
            _mask_image(edit.region(side)),
            edit.t_ins,
            edit.t_e,
            _local_description(edit),
            {"kind": edit.kind, "distractor": edit.distractor},
        )
        for edit in session
    )
    first = session[0]
    return MagicBrushSessionFiles(f"{index:06d}", first.source_image(side), first.t_o, turns)


def _emu_edit_row(idx: int, edit: WorldEdit, side: int) -> dict[str, object]:
    png = encode_png(edit.source_image(side))
    row = emu_edit_row(idx, png, edit.t_ins, EMU_EDIT_TASK[edit.kind], edit.t_o, edit.t_e)
    return row | {
        "distractor": edit.distractor,
        "mask": image_cell(encode_png(_mask_image(edit.region(side)))),
        "target": image_cell(encode_png(edit.target_image(side))),
    }


def _mask_image(region: np.ndarray) -> Image.Image:
    """MagicBrush's mask convention: an "L" picture, white = edited."""
    return Image.fromarray(region.astype(np.uint8) * 255)  # 2-D uint8: mode "L"


def _local_description(edit: WorldEdit) -> str:
    """What the edited region shows after the edit (MagicBrush's local description)."""
    if edit.kind == "remove":
        return f"a plain {edit.target.background} background"
    edited = edit.target.objects[edit.index]
    return f"a {edited.size} {edited.colour} {edited.shape}"


def _counts(edits: list[WorldEdit]) -> dict[str, object]:
    kinds = Counter(edit.kind for edit in edits)
    return {
        "edits": len(edits),
        "kinds": {kind: kinds[kind] for kind in KINDS},
        "distractor_share": round(sum(edit.distractor for edit in edits) / len(edits), 4),
    }
