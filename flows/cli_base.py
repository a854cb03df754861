"""What the `regionedit` commands (flows/cli.py) stand on: the Typer app; `command`, which
registers one and is the one place its errors reach the user; `exit_now`, how the executable
ends; and what a user can type, every option with its help text (the words `--help` and the
docs' CLI reference print): shared options first, then each command's own, in the order of its
signature."""

from __future__ import annotations

import atexit
import functools
import gc
import io
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from components.errors import InputError

app = typer.Typer(
    help="RegionEdit: instruction-driven image editing without editing pairs.",
    no_args_is_help=True,
    add_completion=False,
)


class Failed(Exception):
    """A command that ran and failed, not on the user's input: `error: <message>`, exit 1."""


def command(
    name: str | None = None, catch: tuple[type[Exception], ...] = (), flows: bool = True
) -> Callable:
    """Register a command whose errors reach the user here, and only here: `error: <message>`
    on stderr, then exit 2 for input the user can fix (an InputError, a pydantic
    ValidationError, or `catch`, the command's own), 1 for Failed. A command that runs `flows`
    runs them against the configured Prefect API, else the stages' shared temporary server
    (flows/shared_server.py; one that does not start in time is a failure, exit 1)."""

    def register(function: Callable) -> Callable:
        @functools.wraps(function)  # Typer reads the options from the wrapped signature
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                if not flows:
                    return function(*args, **kwargs)
                from flows.shared_server import ServerStartError, orchestration

                try:
                    with orchestration():
                        return function(*args, **kwargs)
                except ServerStartError as err:
                    raise Failed(str(err)) from None
            except (InputError, ValidationError, Failed, *catch) as err:
                typer.echo(f"error: {err}", err=True)
                raise typer.Exit(1 if isinstance(err, Failed) else 2) from None

        return app.command(name)(run)

    return register


def exit_now(code: int) -> NoReturn:
    """End the process with `code` as the interpreter's own exit would, less its teardown.

    After a stage's command returns, Python's finalisation frees every module and object that
    torch, diffusers and Prefect loaded: about 1.7 s per stage on this 2-core machine (timed on
    the `report` stage's command), spent after the work is done. This does what that exit does that
    matters, in its order, then leaves: it waits for the threads that are not daemons, runs
    every atexit hook (Prefect drains its log and event workers there, `logging` flushes its
    handlers, multiprocessing joins its children), flushes every file still open for writing,
    and exits."""
    main = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    streams = (sys.stdout, sys.stderr)
    standard = {id(stream) for stream in streams} | {id(getattr(s, "buffer", s)) for s in streams}
    for handle in gc.get_objects():
        if type(handle) in _WRITERS and id(handle) not in standard and not handle.closed:
            try:
                handle.flush()
            except OSError as err:  # as the interpreter's teardown: said, and the exit goes on
                print(
                    f"warning: {getattr(handle, 'name', handle)!r} not flushed: {err}",
                    file=sys.stderr,
                )
    for stream in streams:
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`regionedit ... | head`)
            code = code or 120  # the interpreter's own exit code when stdout cannot be flushed
    os._exit(code)


_WRITERS = (io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom)


# shared
ParamsFile = Annotated[Path, typer.Option("--params", help="params file (a profile)")]
Out = Annotated[Path, typer.Option(help="output folder")]
Prepared = Annotated[Path, typer.Option(help="output of prepare")]
Descriptions = Annotated[Path, typer.Option(help="output of describe")]
Scales = Annotated[list[str] | None, typer.Option(help="scale name(s); default: all")]
Limit = Annotated[int | None, typer.Option(help="a quick look at the first N")]
Targets = Annotated[
    list[str] | None,
    typer.Option("--target", help="dvc.yaml stage(s) to bring up to date; default: all"),
]
Repo = Annotated[Path, typer.Option(help="the project folder (dvc.yaml)")]
PARAMS = Path("params.yaml")
PREPARED = Path("data/prepared")
DESCRIPTIONS = Path("data/descriptions/descriptions.parquet")

# prepare
Source = Annotated[
    str,
    typer.Option(
        help="'demo', 'world', a captioned folder, WebDataset tars or parquet; "
        "default: prepare.source"
    ),
]
PrepareMetrics = Annotated[
    Path | None, typer.Option(help="counts JSON; default OUT/prepare_metrics.json")
]
Workers = Annotated[int | None, typer.Option(help="decoding processes, 0 = all cores")]
ImageColumn = Annotated[str | None, typer.Option(help="parquet image column")]
CaptionColumn = Annotated[str | None, typer.Option(help="parquet caption column")]

# zoo, world-zoo, world-checks
ZooOut = Annotated[Path | None, typer.Option(help="output folder; default: models.zoo")]
WorldZooOut = Annotated[
    Path | None,
    typer.Option(help="output folder; --release: default models.world (the release)"),
]
Release = Annotated[
    bool, typer.Option("--release", help="train the release's budget (world.release)")
]
Work = Annotated[Path, typer.Option(help="--release: training states and the fp32 models")]
ReleaseResume = Annotated[bool, typer.Option(help="--release: go on from the states in --work")]
ChecksMetrics = Annotated[Path, typer.Option(help="checks as JSON")]
Landscape = Annotated[Path, typer.Option(help="per-edit loss landscape (CSV)")]

# train
TrainMetrics = Annotated[
    Path | None,
    typer.Option(
        help="final losses, one JSON per scale; default metrics/train (ablations: "
        "metrics/ablations/<name>)"
    ),
]
TrainPlots = Annotated[
    Path | None,
    typer.Option(
        help="loss curves, one CSV per scale; default plots/train (ablations: "
        "plots/ablations/<name>)"
    ),
]
Resume = Annotated[
    bool,
    typer.Option(help="continue from the scale's last checkpoint when its config is unchanged"),
]
Features = Annotated[
    Path | None,
    typer.Option(
        help="output of features (data/features): read the cached frozen features; "
        "default: run the frozen encoders in every step"
    ),
]
TrainAblation = Annotated[
    str | None,
    typer.Option(
        help="a loss ablation of params' ablations.zero (paper Table 4), trained at "
        "ablations.scale unless --scale says otherwise"
    ),
]

# describe, features
DescribeMetrics = Annotated[
    Path | None, typer.Option(help="counts JSON; default OUT/describe_metrics.json")
]
Backend = Annotated[
    str | None, typer.Option(help="template, transformers or vllm; default: describe.backend")
]
DescribeLimit = Annotated[int | None, typer.Option(min=1, help="only the first N samples")]
FeaturesMetrics = Annotated[
    Path | None, typer.Option(help="counts JSON; default OUT/features_metrics.json")
]
BatchSize = Annotated[int, typer.Option(min=1, help="samples per encoder call")]
Device = Annotated[str, typer.Option(help="cpu, cuda or auto")]

# edit, demo
Photo = Annotated[Path, typer.Option(help="the photo to edit")]
Instruction = Annotated[str, typer.Option(help='e.g. "change the cat into a dog"')]
Edited = Annotated[Path, typer.Option(help="where the edited image goes")]
MaskOut = Annotated[
    Path | None, typer.Option(help="the region over the input; default OUT with -region")
]
EditCheckpoint = Annotated[
    Path | None,
    typer.Option(help="head weights (.safetensors); default: the largest trained scale"),
]
OriginalDescription = Annotated[str | None, typer.Option(help="t_o; default: captioned")]
TargetDescription = Annotated[
    str | None, typer.Option(help="t_e; default: written from t_o and the instruction")
]
Host = Annotated[str, typer.Option(help="address to serve on; 0.0.0.0: every interface")]
Port = Annotated[int, typer.Option(help="port to serve on")]
Share = Annotated[bool, typer.Option(help="also a public gradio.live link")]
DemoCheckpoint = Annotated[
    Path | None, typer.Option(help="head weights (.safetensors) offered beside the scales'")
]

# world
WorldSeed = Annotated[int | None, typer.Option(help="the set's seed; default: world.test_seed")]
Count = Annotated[int | None, typer.Option(help="sessions; default: world.test_count")]
Side = Annotated[int | None, typer.Option(help="pixels; default: world.side")]

# evaluate, pairs
Benchmark = Annotated[str, typer.Option(help="emu_edit or magicbrush")]
EvaluateScale = Annotated[
    str | None,
    typer.Option(help="the scale whose head is evaluated; with --ablation: ablations.scale"),
]
Data = Annotated[Path | None, typer.Option(help="a downloaded copy; default: evaluate.<benchmark>")]
EvaluateCheckpoint = Annotated[
    Path | None, typer.Option(help="head weights (.safetensors); default: the scale's")
]
SampleOut = Annotated[Path | None, typer.Option(help="per-sample outputs")]
EvaluateMetrics = Annotated[
    Path | None,
    typer.Option(
        help="scores JSON; default metrics/<scale>/<benchmark>.json (ablations: "
        "metrics/ablations/<name>/<benchmark>.json)"
    ),
]
EvaluateAblation = Annotated[
    str | None, typer.Option(help="evaluate this loss ablation's head (see `train --ablation`)")
]
PairsMetrics = Annotated[Path, typer.Option(help="what each scale trained on, cost and scored")]
PairsPlots = Annotated[Path, typer.Option(help="loss curves, one CSV per scale")]

# serve, use-profile
Cron = Annotated[str, typer.Option(help="schedule, e.g. '0 3 * * *' (03:00 every day)")]
Name = Annotated[str, typer.Option(help="deployment name")]
TimeZone = Annotated[str, typer.Option(help="the cron's time zone")]
Profile = Annotated[Path, typer.Argument(help="a params file, e.g. infra/profiles/paper.yaml")]
