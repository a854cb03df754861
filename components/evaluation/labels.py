"""What ran, in words: the profile, the training samples and where each model's weights came from.

Every table row, plot line and MLflow run of an evaluation is labelled from this record, so
that a run of tiny random models on a few samples can never pass for the paper's "Ours (1M)".
"""

from __future__ import annotations

from pathlib import Path

from components.config import ModelsConfig
from components.models.loading import OPEN_CLIP_LOCAL, local_folder

RANDOM, CHECKPOINT, LOCAL = "random", "checkpoint", "local folder"


def weights(name: str, zoo: str, pretrained: str | None = None, open_clip: bool = False) -> str:
    """Where a model's weights come from: `random` for the tiny zoo (seeded random weights) or
    an open_clip architecture without a pretrained tag, `checkpoint` for a hub or library id,
    `local folder` for any other folder (a downloaded checkpoint, or models trained here)."""
    folder = local_folder(name.removeprefix(OPEN_CLIP_LOCAL))
    if folder is None:
        return RANDOM if open_clip and pretrained is None else CHECKPOINT
    zoo_folder = Path(zoo).expanduser().resolve()
    return RANDOM if folder.resolve().is_relative_to(zoo_folder) else LOCAL


def provenance(models: ModelsConfig) -> dict[str, str]:
    """Each model the evaluation uses, by role, with where its weights come from."""
    zoo = models.zoo
    return {
        "clip": weights(models.clip, zoo, models.clip_pretrained, open_clip=True),
        "instruction_encoder": weights(models.instruction_encoder, zoo),
        "inpainting": weights(models.inpainting, zoo),
        "baseline": weights(models.baseline, zoo),
        "metric_clip": weights(models.metric_clip, zoo, models.metric_clip_pretrained, True),
        "dino": weights(models.dino, zoo),
    }


def overall(kinds: dict[str, str], roles: tuple[str, ...]) -> str:
    """One word for a system's models: random if any is, checkpoints if all are."""
    chosen = {kinds[role] for role in roles}
    if RANDOM in chosen:
        return "random models"
    return "real checkpoints" if chosen == {CHECKPOINT} else "local models"


OURS = ("clip", "instruction_encoder", "inpainting")
BASELINE = ("baseline",)
METRICS = ("metric_clip", "dino")
