"""What each table of the report holds: its benchmark, its columns and the systems it compares.

No prose here (that is `prose.py`): only the names of scores and columns, in the paper's order.
"""

from __future__ import annotations

from pathlib import Path

PUBLISHED = Path(__file__).parent.parent / "published.yaml"  # components/evaluation/
EMU_EDIT_COLUMNS = ("clip_dir", "clip_out", "l1", "clip_img", "dino")  # Table 2's order
MAGICBRUSH_COLUMNS = ("l1", "l2", "clip_i", "dino", "clip_t")
REGION_COLUMNS = ("region_fraction", "empty_region")
# Table 4's known answers: what Figure 6 says each loss does to the region (misses beside a
# similar object without L_semAlign, large and sparse without L_CLIP) -> score under `ours/`
ABLATION_KNOWN = {
    "region_iou": "region_iou",
    "region_iou_distractor": "distractor/region_iou",
    "region_fraction": "region_fraction",
    "region_precision": "region_precision",
    "edit_success": "edit_success",
}
TABLES = {  # table -> (benchmark, score prefix under each system, paper's metric columns)
    "emu_edit": ("emu_edit", "", EMU_EDIT_COLUMNS),
    "magicbrush_single": ("magicbrush", "single/", MAGICBRUSH_COLUMNS),
    "magicbrush_multi": ("magicbrush", "multi/", MAGICBRUSH_COLUMNS),
}
COLUMNS = {
    "emu_edit": (*EMU_EDIT_COLUMNS, *REGION_COLUMNS),
    "emu_edit_tasks": (*EMU_EDIT_COLUMNS, *REGION_COLUMNS),
    "magicbrush_single": (*MAGICBRUSH_COLUMNS, *REGION_COLUMNS, "region_iou"),
    "magicbrush_multi": (*MAGICBRUSH_COLUMNS, *REGION_COLUMNS, "region_iou"),
    "emu_edit_ablation": (*EMU_EDIT_COLUMNS, *ABLATION_KNOWN),
}
LABEL_COLUMNS = ("method", "source", "profile", "scale", "training_samples", "models", "cases")
LOWER_IS_BETTER = {"l1", "l2"}
METRIC_MODELS = {  # paper metric -> the model that scores it
    **dict.fromkeys(("clip_dir", "clip_out", "clip_img", "clip_i", "clip_t"), "CLIP"),
    "dino": "DINO",
}

# Known answers (DESIGN §10): ours, the ceiling, InstructPix2Pix, then the trivial baselines
TRIVIAL = ("untrained", "whole_image", "random_area", "copy")
CEILING = "ground_truth"  # our editor handed the ground-truth region: the generator's best
KNOWN_SYSTEMS = ("ours", CEILING, "baseline", *TRIVIAL)
KNOWN_COLUMNS = {  # column -> its score under `<system>/<test set's prefix>`
    "region_iou": "region_iou",
    "region_iou_grid": "region_iou_grid",
    "region_precision": "region_precision",
    "region_recall": "region_recall",
    "region_fraction": "region_fraction",
    "edit_success": "edit_success",
    "edit_success_distractor": "distractor/edit_success",
    "edit_success_no_distractor": "no distractor/edit_success",
}
SCALING_METRICS = ("region_iou", "edit_success")
PLOTTED = "magicbrush_single"  # the test set of the known-answer panels of scaling.png

# World models (metrics/world.json): L_CLIP's terms, L_CLIP itself last
LANDSCAPE_TERMS = ("clip_global", "clip_direction", "clip_structure", "clip")
