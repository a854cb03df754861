"""The world's models checked alone and the loss landscape (metrics/world.json), each judged
against its chance or baseline, and plainly: can training find the ground-truth region?"""

from __future__ import annotations

from components.evaluation.report.formatting import cell, markdown_table
from components.evaluation.report.prose import (
    CHECKS,
    LANDSCAPE_AT_FAULT,
    LANDSCAPE_BEATEN,
    LANDSCAPE_HEADING,
    LANDSCAPE_INTRO,
    LANDSCAPE_REGIONS,
    LANDSCAPE_SOUND,
    WORLD_HEADING,
    WORLD_INTRO,
)
from components.evaluation.report.schema import LANDSCAPE_TERMS


def world_lines(world: dict) -> list[str]:
    """The world's models checked alone, then the loss landscape, from metrics/world.json."""
    if not world:
        return []
    kinds = world.get("models", {})
    body = [
        [
            key,
            f"{role} ({kinds.get(role, 'unknown')})",
            what,
            f"{words}: {cell(world.get(value) if isinstance(value, str) else value)}",
            cell(world[key]),
        ]
        for key, (role, what, (words, value)) in CHECKS.items()
        if key in world
    ]
    return [
        WORLD_HEADING.format(profile=world.get("profile", "unknown")),
        "",
        WORLD_INTRO,
        "",
        *markdown_table(
            ["check", "model", "what it measures", "chance or baseline", "value"], body, 4
        ),
        "",
        *_landscape_lines(world),
    ]


def landscape_verdict(world: dict) -> str:
    """Plainly: does the ground-truth region score the lowest mean L_CLIP (DESIGN §10)?"""
    losses = {
        region: world[f"landscape/{region}/clip"]
        for region in LANDSCAPE_REGIONS
        if f"landscape/{region}/clip" in world
    }
    lowest = min(losses, key=losses.__getitem__)
    if lowest == "ground_truth":
        return LANDSCAPE_SOUND
    return LANDSCAPE_AT_FAULT.format(
        region=LANDSCAPE_REGIONS[lowest],
        lowest=losses[lowest],
        ground_truth=losses["ground_truth"],
    )


def _landscape_lines(world: dict) -> list[str]:
    """L_CLIP and its terms per region, how often and by how much the ground truth beats each
    region, and plainly whether it scores the lowest L_CLIP."""
    if f"landscape/ground_truth/{LANDSCAPE_TERMS[-1]}" not in world:
        return []
    body = []
    for region, name in LANDSCAPE_REGIONS.items():
        beats = world.get(f"landscape/ground_truth_beats/{region}")
        margin = world.get(f"landscape/margin/{region}")
        terms = [cell(world.get(f"landscape/{region}/{term}")) for term in LANDSCAPE_TERMS]
        body.append([name, *terms, cell(beats), cell(margin)])
    headers = [*(f"{term} ↓" for term in LANDSCAPE_TERMS[:-1]), "L_CLIP ↓"]
    return [
        LANDSCAPE_HEADING.format(edits=int(world.get("landscape/edits", 0))),
        "",
        LANDSCAPE_INTRO,
        "",
        *markdown_table(["region", *headers, *LANDSCAPE_BEATEN], body),
        "",
        landscape_verdict(world),
        "",
    ]
