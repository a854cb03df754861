"""Typed view of params.yaml: parsed once at the edge, then passed down as plain objects."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrepareConfig(_Strict):
    """How `prepare` turns a source of images + captions into WebDataset shards."""

    source: str = "demo"  # `demo`, a folder, a folder of .tar shards, or a folder/file of .parquet
    image_column: str = "image"  # parquet sources: column with images ({bytes, path} or bytes)
    caption_column: str = "caption"  # parquet sources: column with the caption text
    min_side: int = Field(64, ge=1)  # images with a shorter side are rejected
    max_pixels: int = Field(50_000_000, ge=1)  # larger images are rejected before decoding
    samples_per_shard: int = Field(1000, ge=1)  # samples per WebDataset tar
    workers: int = Field(0, ge=0)  # decoding processes; 0 = one per CPU core
    demo_scenes: int = Field(64, ge=0)  # procedurally generated scenes added to the demo photos


class Params(_Strict):
    """The whole of params.yaml."""

    seed: int = 0  # one seed for every random choice (scene generation, scale order)
    prepare: PrepareConfig = PrepareConfig()
    scales: dict[str, int] = {
        "1M": 1_000_000,
        "2M": 2_000_000,
        "3M": 3_000_000,
        "4M": 4_000_000,
        "5M": 5_000_000,
    }

    @field_validator("scales")
    @classmethod
    def _scales_grow(cls, scales: dict[str, int]) -> dict[str, int]:
        counts = list(scales.values())
        if not counts or any(n < 1 for n in counts) or counts != sorted(set(counts)):
            raise ValueError("scales must map names to strictly increasing positive counts")
        return scales


class ConfigError(ValueError):
    """params.yaml (or a profile) is unreadable or does not match the schema."""


def load_params(path: str | Path) -> Params:
    """Read a params file; any unknown key or wrong type raises ConfigError naming both."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read params file: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join(str(part) for part in e["loc"]) or "<top level>"
            if e["type"] == "extra_forbidden":
                problems.append(f"  {key}: unknown key (check its spelling or remove it)")
            else:
                problems.append(f"  {key}: {e['msg']} (got {e.get('input')!r})")
        raise ConfigError(f"{path}: invalid params:\n" + "\n".join(problems)) from None
