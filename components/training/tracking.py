"""MLflow bookkeeping of a training sweep: one parent run, one child run per scale, the
registered `region-head` model with a version and an alias per scale."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import yaml
from mlflow import MlflowClient
from mlflow.entities import Param
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from components.config import Params
from components.models.generators import generator_family
from components.models.provenance import OURS, overall, provenance

MODEL_NAME = "region-head"
SWEEP_TAG = "regionedit.sweep"
ROLE_TAG = "regionedit.role"


def flatten(tree: dict, prefix: str = "") -> dict[str, str]:
    """{"a": {"b": 1}} -> {"a.b": "1"}: MLflow params are flat strings."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = str(value)
    return flat


# packages under components/
TRAINING_CODE = ("method", "generation", "models", "training", "features")


def code_version() -> str:
    """A hash of the training code: a checkpoint of other code is not resumed."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for package in TRAINING_CODE:
        for source in sorted((root / package).rglob("*.py")):
            digest.update(source.relative_to(root).as_posix().encode() + source.read_bytes())
    return digest.hexdigest()[:16]


def training_config(params: Params, scale: str, data_version: str) -> dict:
    """Everything a scale's training depends on (params, data, code); its hash decides the
    sweep and whether a checkpoint may be resumed."""
    body = params.model_dump(include={"seed", "models", "method", "train"})
    return body | {
        "data_version": data_version,
        "code_version": code_version(),
        "scale": scale,
        "count": params.scales[scale],
    }


def digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def data_version(prepared: Path, lock: Path = Path("dvc.lock")) -> str:
    """The DVC hash of the prepared data from dvc.lock, else a hash of its manifest."""
    if lock.is_file():
        for stage in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).values():
            for out in stage.get("outs", []):
                if Path(out["path"]) == prepared and "md5" in out:
                    return f"dvc:{out['md5']}"
    manifest = (prepared / "manifest.parquet").read_bytes()
    return f"manifest-sha256:{hashlib.sha256(manifest).hexdigest()[:16]}"


def git_commit() -> str:
    """HEAD's commit, marked -dirty when tracked files differ from it; 'unknown' outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def sweep_run(client: MlflowClient, experiment_id: str, sweep: str) -> str:
    """The parent run of this sweep (found by its tag), created on first use."""
    found = client.search_runs(
        [experiment_id],
        f"tags.`{SWEEP_TAG}` = '{sweep}' and tags.`{ROLE_TAG}` = 'sweep'",
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    run = client.create_run(
        experiment_id, run_name=f"sweep-{sweep[:8]}", tags={SWEEP_TAG: sweep, ROLE_TAG: "sweep"}
    )
    return run.info.run_id


def start_scale_run(
    client: MlflowClient,
    experiment_id: str,
    parent: str,
    sweep: str,
    params: Params,
    scale: str,
    tags: dict[str, str],
) -> str:
    """A new child run for one scale, with its flattened params and tags. Its name says what
    ran: the profile, the sample count and whether the method's models are real checkpoints;
    the `generator` tag says which generator family models.inpainting holds."""
    count = params.scales[scale]
    models = overall(provenance(params.models), OURS)
    ablation = f", ablation {params.ablation}" if params.ablation else ""
    run = client.create_run(
        experiment_id,
        run_name=f"train {scale}: {params.profile} profile{ablation}, {count} training samples, "
        f"{models}",
        tags={
            MLFLOW_PARENT_RUN_ID: parent,
            SWEEP_TAG: sweep,
            ROLE_TAG: "scale",
            "scale": scale,
            "profile": params.profile,
            "ablation": params.ablation or "none",
            "training_samples": str(count),
            "models": models,
            "generator": generator_family(params.models.inpainting),
            "training_data": "text-image pairs",  # the pair-trained comparison's: editing pairs
            **tags,
        },
    )
    flat = flatten(params.model_dump(include={"seed", "models", "method", "train"}))
    train = params.train
    steps = train.steps_for(count)
    samples_seen = steps * train.batch_size * train.devices * train.num_nodes
    flat |= {
        "scale": scale,
        "scale_count": str(count),
        "scale_steps": str(steps),  # optimizer steps this scale trains for
        "scale_epochs": f"{samples_seen / count:.4g}",  # passes over the scale's samples
    }
    items = [Param(key, value) for key, value in sorted(flat.items())]
    for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run.info.run_id, params=items[start : start + 100])
    return run.info.run_id


def register_head(
    client: MlflowClient, run_id: str, artifact_path: str, scale: str, ablation: str | None
) -> str:
    """A new `region-head` version from the run's head artifact, aliased `scale-<scale>` (a
    loss ablation's: `ablation-<name>`, so the scale's alias stays on the full method)."""
    if not client.search_registered_models(f"name = '{MODEL_NAME}'"):
        client.create_registered_model(MODEL_NAME)
    version = client.create_model_version(
        MODEL_NAME,
        f"runs:/{run_id}/{artifact_path}",
        run_id=run_id,
        tags={"scale": scale, "ablation": ablation or "none"},
    )
    alias = f"ablation-{ablation}" if ablation else f"scale-{scale}"
    client.set_registered_model_alias(MODEL_NAME, alias, version.version)
    return version.version
