"""What ran, in words: the profile, the training samples and where each model's weights came from.

Every table row, plot line and MLflow run of an evaluation is labelled from this record, so
that a run of tiny random models on a few samples can never pass for the paper's "Ours (1M)".
"""

from __future__ import annotations

from pathlib import Path

from components.config import ModelsConfig
from components.models.loading import OPEN_CLIP_LOCAL, local_folder

RANDOM, CHECKPOINT, LOCAL, WORLD = "random", "checkpoint", "local folder", "world"


def weights(
    name: str, zoo: str, pretrained: str | None = None, open_clip: bool = False, world: str = ""
) -> str:
    """Where a model's weights come from: `random` for the tiny zoo (seeded random weights) or
    an open_clip architecture without a pretrained tag, `world` for the world's release
    (models trained on the generated world), `checkpoint` for a hub or library id, `local
    folder` for any other folder (a downloaded checkpoint)."""
    folder = local_folder(name.removeprefix(OPEN_CLIP_LOCAL))
    if folder is None:
        return RANDOM if open_clip and pretrained is None else CHECKPOINT
    for root, kind in ((zoo, RANDOM), (world, WORLD)):
        if root and folder.resolve().is_relative_to(Path(root).expanduser().resolve()):
            return kind
    return LOCAL


def provenance(models: ModelsConfig) -> dict[str, str]:
    """Each model the evaluation uses, by role, with where its weights come from."""
    zoo, world = models.zoo, models.world
    return {
        "clip": weights(models.clip, zoo, models.clip_pretrained, True, world),
        "instruction_encoder": weights(models.instruction_encoder, zoo, world=world),
        "inpainting": weights(models.inpainting, zoo, world=world),
        "baseline": weights(models.baseline, zoo, world=world),
        "metric_clip": weights(models.metric_clip, zoo, models.metric_clip_pretrained, True, world),
        "dino": weights(models.dino, zoo, world=world),
    }


def overall(kinds: dict[str, str], roles: tuple[str, ...]) -> str:
    """A few words for a system's models: world models (naming any random part), random if any
    is, checkpoints if all are."""
    chosen = {kinds[role] for role in roles}
    if WORLD in chosen:  # trained here on the generated world; say which part is random
        randoms = [role.replace("_", " ") for role in roles if kinds[role] == RANDOM]
        return "world models" + (f", random {' and '.join(randoms)}" if randoms else "")
    if RANDOM in chosen:
        return "random models"
    return "real checkpoints" if chosen == {CHECKPOINT} else "local models"


OURS = ("clip", "instruction_encoder", "inpainting")
BASELINE = ("baseline",)
METRICS = ("metric_clip", "dino")
