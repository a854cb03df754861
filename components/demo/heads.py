"""The trained region heads a user has: the MLflow registry's `scale-*` aliases and local
checkpoints, one choice per scale, resolved to a safetensors file only when chosen."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from components.config import Params
from components.training.tracking import MODEL_NAME


@dataclass(frozen=True)
class Head:
    """One choice of the model dropdown."""

    scale: str  # "1M" … "5M"; "" for the untrained head
    where: str  # in words: the checkpoint's path or the registry's model@alias and version
    path: Path | None = None  # a local head.safetensors
    run_id: str | None = None  # else the MLflow run whose `head` artifact holds it

    @property
    def label(self) -> str:
        return f"{self.scale} · {self.where}" if self.scale else self.where

    def weights(self, uri: str) -> Path | None:
        """The head's safetensors file; a registry head is downloaded from `uri` once."""
        if self.run_id is None:
            return self.path
        from mlflow import MlflowClient

        folder = Path(tempfile.mkdtemp(prefix=f"regionedit-head-{self.scale}-"))
        client = MlflowClient(uri)
        return Path(client.download_artifacts(self.run_id, "head/head.safetensors", str(folder)))


UNTRAINED = Head("", "untrained head (seeded; smoke runs only)")


def tracking_uri(params: Params) -> str:
    """MLFLOW_TRACKING_URI if set, else `tracking.uri`: where training registered its heads."""
    return os.environ.get("MLFLOW_TRACKING_URI") or params.tracking.uri


def find_heads(params: Params, local: dict[str, Path | None], uri: str) -> list[Head]:
    """One head per scale of `params.scales` that has one, smallest first: the local
    checkpoint when `local` has it (no download), else the registry's `scale-<scale>` alias."""
    missing = [scale for scale in params.scales if local.get(scale) is None]
    aliases = _registered(uri, missing) if missing else {}
    heads = []
    for scale in params.scales:
        if local.get(scale) is not None:
            heads.append(Head(scale, str(local[scale]), path=local[scale]))
        elif scale in aliases:
            heads.append(aliases[scale])
    return heads


def _registered(uri: str, scales: list[str]) -> dict[str, Head]:
    """The registry's heads by scale; none where the registry is absent or unreachable."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return {}  # no training has run here: do not create an empty database by asking
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client, heads = MlflowClient(uri), {}
    for scale in scales:
        alias = f"scale-{scale}"
        try:
            version = client.get_model_version_by_alias(MODEL_NAME, alias)
        except MlflowException:
            continue  # this scale was never registered
        where = f"MLflow {MODEL_NAME}@{alias} (version {version.version})"
        heads[scale] = Head(scale, where, run_id=version.run_id)
    return heads
