"""The `regionedit` command: one subcommand per pipeline stage, a few lines over its flow; the
options and `command` (the one error path) are in flows/cli_base.py, and the flows and
components format their own results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from components.config import changed_keys, load_params
from components.errors import InputError
from flows import cli_base as opt
from flows.cli_base import DESCRIPTIONS, PARAMS, PREPARED, Failed, app, command, exit_now


@app.callback()
def main() -> None:
    """RegionEdit pipeline stages."""


def run() -> None:
    """The `regionedit` executable (pyproject's [project.scripts]): the app, then its exit
    without the interpreter's teardown (`exit_now`). An uncaught error leaves the usual way,
    with its traceback."""
    code: object = 0
    try:
        app()
    except SystemExit as end:
        code = end.code
    if code is None or isinstance(code, int):
        exit_now(code or 0)
    print(code, file=sys.stderr)
    exit_now(1)


@command()
def prepare(
    source: opt.Source = "",
    out: opt.Out = PREPARED,
    metrics: opt.PrepareMetrics = None,
    workers: opt.Workers = None,
    image_column: opt.ImageColumn = None,
    caption_column: opt.CaptionColumn = None,
    params: opt.ParamsFile = PARAMS,
) -> None:
    """Turn images + captions into WebDataset shards, manifest.parquet and rejected.jsonl.

    A killed run, started again with the same source and settings, resumes after its last
    finished shard."""
    from flows.prepare import prepare_flow

    options = {
        "workers": ("--workers", workers),
        "image_column": ("--image-column", image_column),
        "caption_column": ("--caption-column", caption_column),
        "source": ("--source", source or None),
    }
    settings = load_params(params, section="prepare", overrides=options)
    typer.echo(prepare_flow(settings.prepare.source, out, settings, metrics).line())


@command()
def zoo(out: opt.ZooOut = None, params: opt.ParamsFile = PARAMS) -> None:
    """Build the tiny random models of the embedded default (offline, seeded by `seed`)."""
    from components.random_models.build import summary_line
    from flows.zoo import zoo_flow

    settings = load_params(params)
    folder = out or Path(settings.models.zoo)
    typer.echo(summary_line(folder, zoo_flow(folder, settings.seed)))


@command("world-zoo")
def world_zoo(
    out: opt.WorldZooOut = None,
    release: opt.Release = False,
    work: opt.Work = Path("checkpoints/world-release"),
    resume: opt.ReleaseResume = False,
    params: opt.ParamsFile = PARAMS,
) -> None:
    """Train the world's frozen models (DESIGN §10): the method's CLIP, the metric CLIP, the
    instruction encoder and the inpainting pipeline. With --release, the release's budget
    `world.release`, resumably, into models.world (README, The world's release); without it,
    the quick budget `world.zoo` (the tests' world models) into --out."""
    from components.world.zoo.resumable import refuse_to_start_over
    from flows.zoo import world_release_flow, world_zoo_flow

    settings = load_params(params)
    world = Path(settings.models.world)
    if not release:
        if out is None or out.resolve() == world.resolve():
            raise InputError(
                f"--out is required without --release, and not {world}: that folder is the "
                "world's release in git (retrain it with --release)"
            )
        names = world_zoo_flow(out, settings.seed, settings.world)
        typer.echo(f"world zoo: {', '.join(names)} in {out}")
        return
    refuse_to_start_over(work / "states", resume)
    folder = out or world
    manifest = world_release_flow(folder, work, settings.seed, settings.world, settings.method)
    typer.echo(f"world release in {folder}: {json.dumps(manifest['checks'])}")


@command("world-checks")
def world_checks(
    metrics: opt.ChecksMetrics = Path("metrics/world.json"),
    landscape: opt.Landscape = Path("reports/landscape.csv"),
    params: opt.ParamsFile = PARAMS,
) -> None:
    """Check the world's models alone (CLIP binding, the inpainter's ceiling) and the loss
    landscape with the generator in the loop, before any training claim (DESIGN §10)."""
    from flows.world import check_lines, world_checks_flow

    typer.echo("\n".join(check_lines(world_checks_flow(load_params(params), metrics, landscape))))


@command()
def train(
    scale: opt.Scales = None,
    prepared: opt.Prepared = PREPARED,
    descriptions: opt.Descriptions = DESCRIPTIONS,
    metrics: opt.TrainMetrics = None,
    plots: opt.TrainPlots = None,
    resume: opt.Resume = True,
    features: opt.Features = None,
    ablation: opt.TrainAblation = None,
    params: opt.ParamsFile = PARAMS,
) -> None:
    """Train the region head on the nested subset of each scale; one MLflow child run each."""
    from components.training.outputs import summary_line
    from flows.train import train_flow

    settings = load_params(params, ablation)
    default = [settings.ablations.scale] if ablation else list(settings.scales)
    scales = settings.known_scales(scale or default)
    folder = Path("ablations") / ablation if ablation else Path("train")
    metrics, plots = metrics or "metrics" / folder, plots or "plots" / folder
    results = train_flow(settings, scales, prepared, descriptions, metrics, plots, resume, features)
    typer.echo("\n".join(summary_line(name, summary) for name, summary in results.items()))


@command()
def describe(
    data: opt.Prepared = PREPARED,
    out: opt.Out = Path("data/descriptions"),
    metrics: opt.DescribeMetrics = None,
    backend: opt.Backend = None,
    limit: opt.DescribeLimit = None,
    params: opt.ParamsFile = PARAMS,
) -> None:
    """Write t_o, t_ins and t_e for the prepared samples: descriptions.parquet, rejected.jsonl."""
    from flows.describe import run_describe

    options = {"backend": ("--backend", backend or None)}
    settings = load_params(params, section="describe", overrides=options)
    typer.echo(run_describe(data, out, settings, metrics, limit).line())


@command()
def features(
    data: opt.Prepared = PREPARED,
    descriptions: opt.Descriptions = DESCRIPTIONS,
    out: opt.Out = Path("data/features"),
    metrics: opt.FeaturesMetrics = None,
    batch_size: opt.BatchSize = 16,
    device: opt.Device = "auto",
    params: opt.ParamsFile = PARAMS,
) -> None:
    """Cache the frozen features training needs per sample (T_o, T_e, F_ins, SD prompt, z_src)."""
    from flows.features import features_flow

    settings = load_params(params)
    summary = features_flow(data, descriptions, out, settings, metrics, batch_size, device)
    typer.echo(summary.line())


@command(catch=(ValueError,), flows=False)  # the Editor's ValueErrors name the input it cannot edit
def edit(
    image: opt.Photo,
    instruction: opt.Instruction,
    out: opt.Edited = Path("edited.png"),
    mask_out: opt.MaskOut = None,
    checkpoint: opt.EditCheckpoint = None,
    original_description: opt.OriginalDescription = None,
    target_description: opt.TargetDescription = None,
    seed: int = 0,
    params: opt.ParamsFile = PARAMS,
) -> None:
    """Edit one image as the instruction says; also write the predicted region over it.

    Prints t_o and t_e and who wrote each: t_o by `models.captioner` (the template backend
    cannot caption), t_e by the describe backend's writer, or the stated fallback."""
    from components.data.images import read_image
    from components.editing import Editor
    from components.training.outputs import NO_TRAINED_HEAD, largest_trained_head

    settings = load_params(params)
    source = read_image(image, "--image")
    checkpoint = checkpoint or largest_trained_head(settings)
    if checkpoint is None:
        typer.echo(f"warning: {NO_TRAINED_HEAD}", err=True)
    result = Editor.from_params(settings, checkpoint).edit(
        source, instruction, original_description, target_description, seed=seed
    )
    typer.echo("\n".join(result.lines(out, result.save(out, source, mask_out))))


@command(flows=False)
def demo(
    host: opt.Host = "127.0.0.1",
    port: opt.Port = 7860,
    share: opt.Share = False,
    checkpoint: opt.DemoCheckpoint = None,
    params: opt.ParamsFile = PARAMS,
) -> None:
    """Serve the editing demo in a browser: the same Editor as `edit`, every trained scale's
    head (local checkpoints, else MLFLOW_TRACKING_URI's registry aliases), "all scales"."""
    from components.demo.session import DemoSession
    from components.training.outputs import trained_heads

    settings = load_params(params)
    session = DemoSession.start(settings, trained_heads(settings), checkpoint)
    from components.demo.app import serve

    serve(session, host, port, share)


@command()
def benchmarks(out: opt.Out = Path("data/benchmarks"), params: opt.ParamsFile = PARAMS) -> None:
    """Write small Emu Edit and MagicBrush test sets from the demo data, in their real formats."""
    from flows.evaluate import benchmarks_flow

    written = benchmarks_flow(out, load_params(params).seed)
    typer.echo("\n".join(f"{name}: {path}" for name, path in written.items()))


@command()
def world(
    seed: opt.WorldSeed = None,
    count: opt.Count = None,
    side: opt.Side = None,
    out: opt.Out = Path("data/world"),
    params: opt.ParamsFile = PARAMS,
) -> None:
    """Write a test set of the generated world, with known answers, in Emu Edit's and
    MagicBrush's formats: OUT/emu_edit, OUT/magicbrush and OUT/world.json (what the set is)."""
    from components.world.testsets import summary_lines
    from flows.world import world_test_sets_flow

    options = {
        "test_seed": ("--seed", seed),
        "test_count": ("--count", count),
        "side": ("--side", side),
    }
    cfg = load_params(params, section="world", overrides=options).world
    summary = world_test_sets_flow(out, cfg.test_seed, cfg.test_count, cfg.side)
    typer.echo("\n".join(summary_lines(out, summary)))


@command()
def evaluate(
    benchmark: opt.Benchmark,
    scale: opt.EvaluateScale = None,
    data: opt.Data = None,
    checkpoint: opt.EvaluateCheckpoint = None,
    out: opt.SampleOut = None,
    metrics: opt.EvaluateMetrics = None,
    limit: opt.Limit = None,
    ablation: opt.EvaluateAblation = None,
    params: opt.ParamsFile = PARAMS,
) -> None:
    """Ours and the InstructPix2Pix baseline on Emu Edit or MagicBrush, by their own metrics."""
    from components.evaluation.harness import BENCHMARKS
    from flows.evaluate import evaluate_flow, summary_line

    settings = load_params(params, ablation)
    if benchmark not in BENCHMARKS:
        raise InputError(f"--benchmark must be one of {list(BENCHMARKS)}")
    scale = scale or (settings.ablations.scale if ablation else None)
    settings.known_scales([scale] if scale else [])
    summary = evaluate_flow(settings, scale, benchmark, data, checkpoint, out, metrics, limit)
    typer.echo(summary_line(summary))


@command(catch=(ValueError,))  # not world data, not SD inpainting, a bad test set
def pairs(
    scale: opt.Scales = None,
    prepared: opt.Prepared = PREPARED,
    descriptions: opt.Descriptions = DESCRIPTIONS,
    metrics: opt.PairsMetrics = Path("metrics/pairs.json"),
    plots: opt.PairsPlots = Path("plots/pairs"),
    limit: opt.Limit = None,
    params: opt.ParamsFile = PARAMS,
) -> None:
    """The comparison: InstructPix2Pix trained on editing pairs of each scale's world scenes,
    then scored on Emu Edit and MagicBrush in ours's harness."""
    from flows.pairs import pairs_flow, record_lines

    settings = load_params(params)
    scales = settings.known_scales(scale or list(settings.scales))
    record = pairs_flow(settings, scales, prepared, descriptions, metrics, plots, limit)
    typer.echo("\n".join(record_lines(record, metrics)))


@command()
def report(out: opt.Out = Path("reports"), params: opt.ParamsFile = PARAMS) -> None:
    """The paper's Tables 2-4 (markdown and CSV) and the scaling plot, from metrics/."""
    from flows.evaluate import report_flow

    typer.echo(f"report: {report_flow(load_params(params), out)}")


@command()
def pipeline(target: opt.Targets = None, repo: opt.Repo = Path(".")) -> None:
    """Every stage of dvc.yaml as a Prefect task; DVC skips the ones that are up to date."""
    from flows.pipeline import StageFailed, pipeline_flow

    try:
        outcomes = pipeline_flow(str(repo), target)
    except StageFailed as err:
        raise Failed(str(err)) from None
    for outcome in outcomes:
        typer.echo(f"{outcome.stage:<28}{outcome.status:<12}{outcome.seconds:>8.1f} s")


@command(flows=False)
def serve(
    cron: opt.Cron,
    name: opt.Name = "scheduled",
    timezone: opt.TimeZone = "UTC",
    target: opt.Targets = None,
    repo: opt.Repo = Path("."),
) -> None:
    """Serve the pipeline as a Prefect deployment on a cron schedule (needs a Prefect server)."""
    from prefect.schedules import Cron
    from prefect.settings import PREFECT_API_URL

    from flows.pipeline import pipeline_flow

    if not PREFECT_API_URL.value():
        raise InputError(
            "schedules need a running Prefect server, and PREFECT_API_URL is not set. "
            "Start one with `prefect server start`, then "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api` (or a remote server's URL)."
        )
    pipeline_flow.serve(
        name=name,
        schedule=Cron(cron, timezone=timezone),
        parameters={"repo": str(repo.resolve()), "targets": target},
    )


@command("use-profile", flows=False)
def use_profile(profile: opt.Profile, params: opt.ParamsFile = PARAMS) -> None:
    """Make a profile the project's params.yaml (validated first); prints what changed."""
    new, old = load_params(profile), load_params(params)
    changed = changed_keys(old.model_dump(mode="json"), new.model_dump(mode="json"))
    params.write_text(profile.read_text(encoding="utf-8"), encoding="utf-8")
    typer.echo(f"{params} is now {profile}: {len(changed)} keys changed")
    typer.echo("".join(f"  {key}\n" for key in changed), nl=False)
    typer.echo("`dvc status` lists the stages this reruns; `regionedit pipeline` reruns them.")
