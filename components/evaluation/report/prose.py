"""Every sentence, title and header of the report, in one place.

Templates are `str.format` strings; the modules that fill them name their fields.
"""

from __future__ import annotations

LOSS_TERMS = {  # MethodConfig's loss weight -> the loss it weighs (Eqs. 6-11)
    "alpha": "L_semAlign",
    "beta": "L_CLIP",
    "lambda_g": "L_CLIPg",
    "lambda_d": "L_CLIPd",
    "lambda_s": "L_CLIPs",
}
TITLES = {
    "emu_edit": "Table 2: Emu Edit test set",
    "emu_edit_tasks": "Table 2, per task: Emu Edit test set",
    "magicbrush_single": "Table 3: MagicBrush test set, single-turn",
    "magicbrush_multi": "Table 3: MagicBrush test set, multi-turn",
    "emu_edit_ablation": "Table 4: loss ablation, Emu Edit test set",
}
HEADERS = {  # region_fraction and empty_region describe a region, they do not score it: no arrow
    "region_fraction": "region fraction",
    "empty_region": "empty-region share",
    "region_iou": "region IoU ↑",
    "region_iou_grid": "region IoU, grid ↑",
    "region_precision": "precision ↑",
    "region_recall": "recall ↑",
    "edit_success": "edit success ↑",
    "edit_success_distractor": "edit success, distractor ↑",
    "region_iou_distractor": "region IoU, distractor ↑",
    "edit_success_no_distractor": "edit success, no distractor ↑",
}
NOTES = {
    "magicbrush_single": [
        "CLIP-T: cos(CLIP image of the edit, CLIP text of the ground truth's description from "
        "the test set's description file), as MagicBrush's `image_eval.py`; the paper prints "
        "no CLIP-T.",
        "region_iou: our region against MagicBrush's own mask of the turn (white = edited); "
        "no published system reports it.",
    ],
    "emu_edit_ablation": [
        "Measured rows: the method trained at one scale (`ablations.scale`) with the named loss "
        "weights at 0 (`regionedit train --ablation NAME`, dvc.yaml: ablate), beside the full "
        "method at that scale; region IoU, distractor: the cases with a similar object beside "
        "the edited one (Figure 6's hard case). The paper's Table 4 has no row without L_CLIP "
        "(Figure 6 shows it).",
    ],
}
NOTES["magicbrush_multi"] = NOTES["magicbrush_single"]
NO_ABLATION = "No ablation was run here (dvc.yaml: ablate): only the published rows."
NO_PUBLISHED = "(No published numbers in {file} for this table.)"
RANDOM_MARK = "‡"
RANDOM_NOTE = (
    "{mark} {metrics}: random here: not meaningful. The {models} that "
    "scores these measured rows has random weights, so their numbers show only that the "
    "code runs."
)

# The head of tables.md: what the measured rows can show, by the kind of models that ran them
RESULTS_INTRO = (
    "Rows marked `published` are copied from the paper as printed; all others were measured "
    "by `dvc repro` with the models named in params.yaml. The copy of the input changes "
    "nothing: it bounds what L1, CLIP_img/CLIP-I and DINO can reward, since ours keeps "
    "every pixel outside its region."
)
SCOPE_NOTHING = "Nothing was measured: only the paper's published rows are shown."
SCOPE_WORLD = (
    "The measured rows ({profiles} profile) use models trained here on the generated "
    "world (DESIGN §10), on {counted} test cases each: the known answers show how well "
    "each system finds and makes the edit, beside the trivial baselines and the ceiling; "
    "rows of random models show only that the code runs, and no measured row compares "
    "with the paper's published rows."
)
SCOPE_RANDOM = (
    "The measured rows ({profiles} profile) come from randomly initialised models on "
    "{counted} benchmark cases each: they show that every code path runs and how the "
    "harness scores the trivial copy, and nothing about how well any method edits; "
    "only the rows marked published are the paper's numbers."
)
SCOPE_REAL = (
    "The measured rows ({profiles} profile) use real checkpoints on {counted} cases "
    "each: they compare systems within this harness, and compare with the published "
    "rows only as far as the data, split and metric models match the paper's (the "
    "assumptions are stated under the tables)."
)
SCOPE_LOCAL = (
    "The measured rows ({profiles} profile) use models from local folders (not the "
    "paper's checkpoints) on {counted} cases each: they compare systems within this "
    "harness, not with the paper's published rows."
)
METRIC_NOTE = "{benchmark}: CLIP {clip} ({kind} weights), DINO {dino}; {why}."
METRIC_MODELS_WHY = {  # benchmark -> why these models score it
    "emu_edit": "an assumption: neither Emu Edit's paper nor this paper names the CLIP that scores "
    "Emu Edit (evaluate.emu_edit_clip overrides it)",
    "magicbrush": "MagicBrush's evaluation uses CLIP ViT-B/32 and DINO ViT-S/16",
}

# Known answers (DESIGN §10)
KNOWN_HEADING = "## Known answers: every system against the world's ground truth"
KNOWN_TITLES = {
    "emu_edit": "Emu Edit test set",
    "magicbrush_single": "MagicBrush test set, single-turn",
    "magicbrush_multi": "MagicBrush test set, multi-turn (final turn)",
}
SYSTEM_LABELS = {  # the systems without a head or models of their own to name
    "untrained": "untrained head (trivial baseline: the seeded head, no training)",
    "whole_image": "whole image (trivial baseline)",
    "random_area": "random region of the ground truth's area (trivial baseline)",
    "ground_truth": "ground-truth region (the generator's ceiling)",
    "copy": "copy of the input (trivial baseline), same harness",
}
REFERENCES = {  # the reference lines of the known-answer plots, and the scaling table's names
    "untrained": "untrained head",
    "whole_image": "whole image",
    "random_area": "random area",
    "copy": "copy",
    "ground_truth": "ground truth (ceiling)",
}
KNOWN_INTRO = (
    "The world's test sets know each edit's ground-truth region and rendered target (DESIGN "
    "§10). Region IoU, precision and recall compare the region a system repainted with the "
    "ground truth, in pixels and (grid) on the head's patch grid; edit success asks the world's "
    "renderer, not a model, whether the edit painted the target inside the ground-truth region "
    "and kept the rest; distractor: a similar object stands beside the edited one. The ceiling "
    "is our editor handed the ground-truth region; the trivial baselines are the untrained "
    "head, the whole image, a random region of the ground truth's area and the copy of the "
    "input. Ours means something only where it beats every trivial baseline."
)
NO_REGIONS = "This test set knows no ground-truth regions: only region fraction."
SCALING_HEADING = "### Scaling: ours against the best trivial baseline and the ceiling"

# World models (metrics/world.json)
SWAPPED_CAPTIONS = 3  # swapped captions per scene in the CLIP check
CHECKS = {  # key -> (model role, what it measures, baseline: (words, value or key of its value))
    "clip/swapped_caption_accuracy": (
        "clip",
        "how often the method's CLIP ranks a held-out scene's true caption above "
        f"{SWAPPED_CAPTIONS} captions with one attribute swapped",
        ("chance", 1 / (1 + SWAPPED_CAPTIONS)),
    ),
    "metric_clip/swapped_caption_accuracy": (
        "metric_clip",
        "the same for the metric CLIP (another seed and shape), which scores the paper's metrics",
        ("chance", 1 / (1 + SWAPPED_CAPTIONS)),
    ),
    "inpainting/edit_success_ground_truth": (
        "inpainting",
        "edit success of the generator alone, repainting the ground-truth region under t_e: the "
        "ceiling of any region the head can choose",
        ("a random region of the same area", "inpainting/edit_success_random_area"),
    ),
    "inpainting/edit_success_random_area": (
        "inpainting",
        "edit success of the same generator repainting a random region of that area",
        ("the ground-truth region", "inpainting/edit_success_ground_truth"),
    ),
    "vae/within_tolerance": (
        "inpainting",
        "share of pixels within the edit tolerance after the VAE's encode-decode round trip",
        ("a lossless round trip", 1.0),
    ),
    "vae/edit_success_ceiling": (
        "inpainting",
        "edit success of the rendered target's VAE round trip pasted into the ground-truth "
        "region: the most any UNet behind this VAE can reach",
        ("a lossless round trip", 1.0),
    ),
}
WORLD_HEADING = "## World models ({profile} profile, metrics/world.json)"
WORLD_INTRO = "Each world model checked alone, on held-out scenes, before the method sees it."
LANDSCAPE_REGIONS = {
    "ground_truth": "ground truth",
    "empty": "empty",
    "whole_image": "whole image",
    "random_area": "random area (as many cells)",
}
LANDSCAPE_HEADING = (
    "### Loss landscape: L_CLIP by region ({edits} held-out edits, generator in the loop)"
)
LANDSCAPE_INTRO = (
    "The method's L_CLIP terms for the same edits under each region, with its frozen models "
    "(reports/landscape.csv per edit). L_semAlign does not depend on the region, so L_CLIP "
    "ranks the regions as L_total does: training can find the ground truth only if it "
    "scores lowest."
)
LANDSCAPE_BEATEN = ["ground truth lower (share of edits)", "mean margin (region − ground truth)"]
LANDSCAPE_SOUND = (
    "The ground-truth region scores the lowest mean L_CLIP of the regions, as it must."
)
LANDSCAPE_AT_FAULT = (
    "The ground truth does not score the lowest L_CLIP: the {region} "
    "region scores {lowest:.4f} against the ground truth's "
    "{ground_truth:.4f}. No optimiser can find the ground-truth region on this "
    "landscape: the world's models are at fault, not the training (DESIGN §10)."
)

# scaling.png
PLOT_TITLE_NOTHING = "The paper's Ours (1M…5M), published; nothing measured"
PLOT_TITLE = (
    "Metrics against training-data scale. paper: published, 1M…5M samples; ours: "
    "{profile} profile, {models}, sample counts at the points"
)
PLOT_EMPTY = "no measured or published scaling data"
RANDOM_PANEL = "\n(random model: not meaningful)"
