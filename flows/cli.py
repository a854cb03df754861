"""The `regionedit` command: one subcommand per pipeline stage."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from components.config import ConfigError, PrepareConfig, load_params
from components.data.sources import SourceError

# Offline machines: the ephemeral Prefect server's telemetry heartbeat would fail loudly.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

app = typer.Typer(
    help="RegionEdit: instruction-driven image editing without editing pairs.",
    no_args_is_help=True,
    add_completion=False,
)

ParamsOption = Annotated[Path, typer.Option("--params", help="params file (a profile)")]


@app.callback()
def main() -> None:
    """RegionEdit pipeline stages."""


@app.command()
def prepare(
    source: Annotated[
        str,
        typer.Option(
            help="'demo', a captioned folder, WebDataset tars or parquet; default: prepare.source"
        ),
    ] = "",
    out: Annotated[Path, typer.Option(help="output folder")] = Path("data/prepared"),
    metrics: Annotated[
        Path | None, typer.Option(help="counts JSON; default OUT/prepare_metrics.json")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="decoding processes, 0 = all cores")] = None,
    image_column: Annotated[str | None, typer.Option(help="parquet image column")] = None,
    caption_column: Annotated[str | None, typer.Option(help="parquet caption column")] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Turn images + captions into WebDataset shards, manifest.parquet and rejected.jsonl."""
    from flows.prepare import prepare_flow

    try:
        settings = load_params(params)
        overrides = {
            "workers": workers,
            "image_column": image_column,
            "caption_column": caption_column,
            "source": source or None,
        }
        cfg = PrepareConfig.model_validate(
            settings.prepare.model_dump() | {k: v for k, v in overrides.items() if v is not None}
        )
        summary = prepare_flow(
            cfg.source, out, settings.model_copy(update={"prepare": cfg}), metrics
        )
    except (ConfigError, SourceError, ValidationError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(summary.line())


@app.command()
def zoo(
    out: Annotated[Path | None, typer.Option(help="output folder; default: models.zoo")] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Build the tiny random models of the embedded default (offline, seeded by `seed`)."""
    from flows.zoo import zoo_flow

    try:
        settings = load_params(params)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    folder = out or Path(settings.models.zoo)
    paths = zoo_flow(folder, settings.seed)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    typer.echo(f"zoo: {len(paths)} models ({', '.join(paths)}) in {folder}, {size / 1e6:.1f} MB")


@app.command()
def train(
    scale: Annotated[list[str] | None, typer.Option(help="scale name(s); default: all")] = None,
    prepared: Annotated[Path, typer.Option(help="output of prepare")] = Path("data/prepared"),
    descriptions: Annotated[Path, typer.Option(help="output of describe")] = Path(
        "data/descriptions/descriptions.parquet"
    ),
    metrics: Annotated[Path, typer.Option(help="final losses, one JSON per scale")] = Path(
        "metrics/train"
    ),
    plots: Annotated[Path, typer.Option(help="loss curves, one CSV per scale")] = Path(
        "plots/train"
    ),
    resume: Annotated[
        bool,
        typer.Option(help="continue from the scale's last checkpoint when its config is unchanged"),
    ] = True,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Train the region head on the nested subset of each scale; one MLflow child run each."""
    from flows.train import train_flow

    try:
        settings = load_params(params)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    unknown = sorted(set(scale or ()) - set(settings.scales))
    if unknown:
        typer.echo(
            f"error: unknown scale(s) {unknown}; params.yaml has {list(settings.scales)}", err=True
        )
        raise typer.Exit(2)
    results = train_flow(
        settings, scale or list(settings.scales), prepared, descriptions, metrics, plots, resume
    )
    for name, summary in results.items():
        typer.echo(
            f"train {name}: step {summary['step']} · L_total {summary['total']:.4f} · "
            f"region-head version {summary['model_version']}"
        )


@app.command()
def describe(
    data: Annotated[Path, typer.Option(help="output of prepare")] = Path("data/prepared"),
    out: Annotated[Path, typer.Option(help="output folder")] = Path("data/descriptions"),
    metrics: Annotated[
        Path | None, typer.Option(help="counts JSON; default OUT/describe_metrics.json")
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(help="template, transformers or vllm; default: describe.backend"),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N samples")] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Write t_o, t_ins and t_e for the prepared samples: descriptions.parquet, rejected.jsonl."""
    from components.config import DescribeConfig
    from components.describe.errors import DescribeError
    from flows.describe import run_describe

    try:
        settings = load_params(params)
        override = {"backend": backend} if backend else {}
        cfg = DescribeConfig.model_validate(settings.describe.model_dump() | override)
        summary = run_describe(
            data, out, settings.model_copy(update={"describe": cfg}), metrics, limit
        )
    except (ConfigError, DescribeError, ValidationError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(summary.line())
