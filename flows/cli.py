"""The `regionedit` command: one subcommand per pipeline stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from components.config import ConfigError, Params, PrepareConfig, load_params
from components.data.sources import SourceError

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
            help="'demo', 'world', a captioned folder, WebDataset tars or parquet; "
            "default: prepare.source"
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
    """Turn images + captions into WebDataset shards, manifest.parquet and rejected.jsonl.

    A killed run, started again with the same source and settings, resumes after its last
    finished shard."""
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

    settings = _load(params)
    folder = out or Path(settings.models.zoo)
    paths = zoo_flow(folder, settings.seed)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    typer.echo(f"zoo: {len(paths)} models ({', '.join(paths)}) in {folder}, {size / 1e6:.1f} MB")


@app.command("world-zoo")
def world_zoo(
    out: Annotated[
        Path | None,
        typer.Option(help="output folder; --release: default models.world (the release)"),
    ] = None,
    release: Annotated[
        bool, typer.Option("--release", help="train the release's budget (world.release)")
    ] = False,
    work: Annotated[
        Path, typer.Option(help="--release: training states and the fp32 models")
    ] = Path("checkpoints/world-release"),
    resume: Annotated[
        bool, typer.Option(help="--release: go on from the states in --work")
    ] = False,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Train the world's frozen models (DESIGN §10): the method's CLIP, the metric CLIP, the
    instruction encoder and the inpainting pipeline. With --release, the release's budget
    `world.release`, resumably, into models.world (README, The world's release); without it,
    the quick budget `world.zoo` (the tests' world models) into --out."""
    settings = _load(params)
    if not release:
        from flows.zoo import world_zoo_flow

        if out is None or out.resolve() == Path(settings.models.world).resolve():
            typer.echo(
                f"error: --out is required without --release, and not {settings.models.world}: "
                "that folder is the world's release in git (retrain it with --release)",
                err=True,
            )
            raise typer.Exit(2)
        folder = out
        names = world_zoo_flow(folder, settings.seed, settings.world)
        typer.echo(f"world zoo: {', '.join(names)} in {folder}")
        return
    from flows.zoo import world_release_flow

    states = work / "states"
    if not resume and states.is_dir() and any(states.iterdir()):
        typer.echo(
            f"error: {states} holds a release training in progress; pass --resume to go on "
            "with it, or delete the folder to start again",
            err=True,
        )
        raise typer.Exit(2)
    from components.world.zoo.resumable import ResumeError

    folder = out or Path(settings.models.world)
    try:
        manifest = world_release_flow(folder, work, settings.seed, settings.world, settings.method)
    except ResumeError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"world release in {folder}: {json.dumps(manifest['checks'])}")


@app.command("world-checks")
def world_checks(
    metrics: Annotated[Path, typer.Option(help="checks as JSON")] = Path("metrics/world.json"),
    landscape: Annotated[Path, typer.Option(help="per-edit loss landscape (CSV)")] = Path(
        "reports/landscape.csv"
    ),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Check the world's models alone (CLIP binding, the inpainter's ceiling) and the loss
    landscape with the generator in the loop, before any training claim (DESIGN §10)."""
    from flows.world import world_checks_flow

    settings = _load(params)
    checks = world_checks_flow(settings, metrics, landscape)
    for name, value in checks.items():
        if isinstance(value, float):
            typer.echo(f"{name}: {value:.4f}")


@app.command()
def train(
    scale: Annotated[list[str] | None, typer.Option(help="scale name(s); default: all")] = None,
    prepared: Annotated[Path, typer.Option(help="output of prepare")] = Path("data/prepared"),
    descriptions: Annotated[Path, typer.Option(help="output of describe")] = Path(
        "data/descriptions/descriptions.parquet"
    ),
    metrics: Annotated[
        Path | None,
        typer.Option(
            help="final losses, one JSON per scale; default metrics/train (ablations: "
            "metrics/ablations/<name>)"
        ),
    ] = None,
    plots: Annotated[
        Path | None,
        typer.Option(
            help="loss curves, one CSV per scale; default plots/train (ablations: "
            "plots/ablations/<name>)"
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(help="continue from the scale's last checkpoint when its config is unchanged"),
    ] = True,
    features: Annotated[
        Path | None,
        typer.Option(
            help="output of features (data/features): read the cached frozen features; "
            "default: run the frozen encoders in every step"
        ),
    ] = None,
    ablation: Annotated[
        str | None,
        typer.Option(
            help="a loss ablation of params' ablations.zero (paper Table 4), trained at "
            "ablations.scale unless --scale says otherwise"
        ),
    ] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Train the region head on the nested subset of each scale; one MLflow child run each."""
    from components.features.store import FeaturesError
    from flows.train import train_flow

    settings = _load(params, ablation)
    if ablation and not scale:
        scale = [settings.ablations.scale]
    folder = Path("ablations") / ablation if ablation else Path("train")
    metrics, plots = metrics or "metrics" / folder, plots or "plots" / folder
    unknown = sorted(set(scale or ()) - set(settings.scales))
    if unknown:
        typer.echo(
            f"error: unknown scale(s) {unknown}; params.yaml has {list(settings.scales)}", err=True
        )
        raise typer.Exit(2)
    try:
        results = train_flow(
            settings,
            scale or list(settings.scales),
            prepared,
            descriptions,
            metrics,
            plots,
            resume,
            features,
        )
    except FeaturesError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
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


@app.command()
def features(
    data: Annotated[Path, typer.Option(help="output of prepare")] = Path("data/prepared"),
    descriptions: Annotated[Path, typer.Option(help="output of describe")] = Path(
        "data/descriptions/descriptions.parquet"
    ),
    out: Annotated[Path, typer.Option(help="output folder")] = Path("data/features"),
    metrics: Annotated[
        Path | None, typer.Option(help="counts JSON; default OUT/features_metrics.json")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="samples per encoder call")] = 16,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "auto",
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Cache the frozen features training needs per sample (T_o, T_e, F_ins, SD prompt, z_src)."""
    from components.features.store import FeaturesError
    from flows.features import features_flow

    settings = _load(params)
    try:
        summary = features_flow(data, descriptions, out, settings, metrics, batch_size, device)
    except FeaturesError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(summary.line())


@app.command()
def edit(
    image: Annotated[Path, typer.Option(help="the photo to edit")],
    instruction: Annotated[str, typer.Option(help='e.g. "change the cat into a dog"')],
    out: Annotated[Path, typer.Option(help="where the edited image goes")] = Path("edited.png"),
    mask_out: Annotated[
        Path | None, typer.Option(help="the region over the input; default OUT with -region")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="head weights (.safetensors); default: the largest trained scale"),
    ] = None,
    original_description: Annotated[
        str | None, typer.Option(help="t_o; default: captioned")
    ] = None,
    target_description: Annotated[
        str | None, typer.Option(help="t_e; default: written from t_o and the instruction")
    ] = None,
    seed: int = 0,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Edit one image as the instruction says; also write the predicted region over it.

    Prints t_o and t_e and who wrote each: t_o by `models.captioner` (the template backend
    cannot caption), t_e by the describe backend's writer, or the stated fallback."""
    from PIL import Image, UnidentifiedImageError

    from components.editing import Editor
    from components.models.loading import ModelLoadError
    from components.pictures import overlay_region

    try:
        settings = load_params(params)
        source = Image.open(image)
        source.load()
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    except (OSError, UnidentifiedImageError) as err:
        typer.echo(f"error: --image {image}: cannot read it as an image ({err})", err=True)
        raise typer.Exit(2) from None
    checkpoint = checkpoint or _largest_trained_head(settings)
    if checkpoint is None:
        typer.echo(
            "warning: no trained head found (run `dvc repro` or pass --checkpoint): "
            "editing with an untrained, seeded head",
            err=True,
        )
    try:
        result = Editor.from_params(settings, checkpoint).edit(
            source, instruction, original_description, target_description, seed=seed
        )
    except (ValueError, ModelLoadError) as err:  # ModelLoadError names the folder to build
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    mask_out = mask_out or out.with_name(f"{out.stem}-region{out.suffix or '.png'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    result.image.save(out)
    overlay_region(source.convert("RGB"), result.mask).save(mask_out)
    typer.echo(f"t_o: {result.original_description!r} ({result.original_source})")
    typer.echo(f"t_e: {result.target_description!r} ({result.target_source})")
    typer.echo(f"edited: {out} · region: {mask_out}")
    if any(s.startswith("fallback") for s in (result.original_source, result.target_source)):
        typer.echo("hint: --original-description and --target-description set t_o and t_e")


def _largest_trained_head(settings: Params) -> Path | None:
    """head.safetensors of the largest scale that has one, if any."""
    from flows.train import trained_head

    heads = (trained_head(settings, scale) for scale in reversed(list(settings.scales)))
    return next((head for head in heads if head is not None), None)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="address to serve on; 0.0.0.0: every interface")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="port to serve on")] = 7860,
    share: Annotated[bool, typer.Option(help="also a public gradio.live link")] = False,
    checkpoint: Annotated[
        Path | None, typer.Option(help="head weights (.safetensors) offered beside the scales'")
    ] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Serve the editing demo in a browser: the same Editor as `edit`, every trained scale's
    head (local checkpoints, else MLFLOW_TRACKING_URI's registry aliases), "all scales"."""
    from components.demo.session import DemoSession
    from components.models.loading import ModelLoadError
    from flows.train import trained_head

    settings = _load(params)
    local = {scale: trained_head(settings, scale) for scale in settings.scales}
    try:
        session = DemoSession.start(settings, local, checkpoint)
    except ModelLoadError as err:  # names the folder to build
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    from components.demo.app import serve

    serve(session, host, port, share)


@app.command()
def benchmarks(
    out: Annotated[Path, typer.Option(help="output folder")] = Path("data/benchmarks"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Write small Emu Edit and MagicBrush test sets from the demo data, in their real formats."""
    from flows.evaluate import benchmarks_flow

    settings = _load(params)
    for name, path in benchmarks_flow(out, settings.seed).items():
        typer.echo(f"{name}: {path}")


@app.command()
def world(
    seed: Annotated[
        int | None, typer.Option(help="the set's seed; default: world.test_seed")
    ] = None,
    count: Annotated[int | None, typer.Option(help="sessions; default: world.test_count")] = None,
    side: Annotated[int | None, typer.Option(help="pixels; default: world.side")] = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("data/world"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Write a test set of the generated world, with known answers, in Emu Edit's and
    MagicBrush's formats: OUT/emu_edit, OUT/magicbrush and OUT/world.json (what the set is)."""
    from components.config import WorldConfig
    from flows.world import world_test_sets_flow

    settings = _load(params)
    options = {
        "test_seed": ("--seed", seed),
        "test_count": ("--count", count),
        "side": ("--side", side),
    }
    try:
        cfg = WorldConfig.model_validate(
            settings.world.model_dump() | {k: v for k, (_, v) in options.items() if v is not None}
        )
    except ValidationError as err:
        problem = err.errors()[0]
        raise typer.BadParameter(problem["msg"], param_hint=options[problem["loc"][0]][0]) from None
    summary = world_test_sets_flow(out, cfg.test_seed, cfg.test_count, cfg.side)
    typer.echo(
        f"world (seed {cfg.test_seed}, {cfg.side} px) in {out}: magicbrush, emu_edit, world.json"
    )
    for name in ("magicbrush", "emu_edit"):
        counts = summary[name]
        sessions = (
            f"{counts['sessions']} sessions ({counts['multi_turn_sessions']} of two turns), "
            if "sessions" in counts
            else ""
        )
        kinds = " · ".join(f"{kind} {n}" for kind, n in counts["kinds"].items())
        typer.echo(
            f"{name}: {sessions}{counts['edits']} edits ({kinds}), "
            f"{counts['distractor_share']:.0%} with a distractor"
        )


@app.command()
def evaluate(
    benchmark: Annotated[str, typer.Option(help="emu_edit or magicbrush")],
    scale: Annotated[
        str | None,
        typer.Option(help="the scale whose head is evaluated; with --ablation: ablations.scale"),
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="a downloaded copy; default: evaluate.<benchmark>")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="head weights (.safetensors); default: the scale's")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="per-sample outputs")] = None,
    metrics: Annotated[
        Path | None,
        typer.Option(
            help="scores JSON; default metrics/<scale>/<benchmark>.json (ablations: "
            "metrics/ablations/<name>/<benchmark>.json)"
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="a quick look at the first N")] = None,
    ablation: Annotated[
        str | None, typer.Option(help="evaluate this loss ablation's head (see `train --ablation`)")
    ] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Ours and the InstructPix2Pix baseline on Emu Edit or MagicBrush, by their own metrics."""
    from components.evaluation.benchmarks import BenchmarkError
    from flows.evaluate import BENCHMARKS, evaluate_flow

    settings = _load(params, ablation)
    scale = scale or (settings.ablations.scale if ablation else None)
    if benchmark not in BENCHMARKS or scale not in settings.scales:
        typer.echo(
            f"error: --benchmark must be one of {list(BENCHMARKS)} and --scale one of "
            f"{list(settings.scales)}",
            err=True,
        )
        raise typer.Exit(2)
    try:
        summary = evaluate_flow(settings, scale, benchmark, data, checkpoint, out, metrics, limit)
    except BenchmarkError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    scores = summary["scores"]
    typer.echo(
        f"{scale} on {benchmark} ({summary['head']}): "
        + ", ".join(
            f"{name} {value:.4f}"
            for name, value in scores.items()
            if name.split("/")[-2] in ("ours", "baseline", "single", "multi")
        )
    )


@app.command()
def pairs(
    scale: Annotated[list[str] | None, typer.Option(help="scale name(s); default: all")] = None,
    prepared: Annotated[Path, typer.Option(help="output of prepare")] = Path("data/prepared"),
    descriptions: Annotated[Path, typer.Option(help="output of describe")] = Path(
        "data/descriptions/descriptions.parquet"
    ),
    metrics: Annotated[Path, typer.Option(help="what each scale trained on, cost and scored")] = (
        Path("metrics/pairs.json")
    ),
    plots: Annotated[Path, typer.Option(help="loss curves, one CSV per scale")] = Path(
        "plots/pairs"
    ),
    limit: Annotated[int | None, typer.Option(help="a quick look at the first N")] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """The comparison: InstructPix2Pix trained on editing pairs of each scale's world scenes,
    then scored on Emu Edit and MagicBrush in ours's harness."""
    from components.evaluation.benchmarks import BenchmarkError
    from flows.pairs import pairs_flow

    settings = _load(params)
    for name in scale or ():
        _known_scale(settings, name)
    try:
        record = pairs_flow(
            settings, scale or list(settings.scales), prepared, descriptions, metrics, plots, limit
        )
    except (ValueError, BenchmarkError) as err:  # not world data, not SD inpainting, bad set
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    if not record:
        typer.echo(f"pairs: skipped, {json.loads(metrics.read_text())['skipped']}")
    for name, done in record.items():
        train, scores = (
            done["train"],
            {**done["emu_edit"]["scores"], **done["magicbrush"]["scores"]},
        )
        typer.echo(
            f"pairs {name}: {train['pairs']} editing pairs, "
            f"{train['compute']['train_tflop']:.3g} TFLOP; region IoU "
            f"{scores['pairs/region_iou']:.4f} (Emu Edit), "
            f"{scores['pairs/single/region_iou']:.4f} (MagicBrush single-turn)"
        )


def _known_scale(settings: Params, scale: str) -> None:
    if scale not in settings.scales:
        typer.echo(f"error: --scale must be one of {list(settings.scales)}", err=True)
        raise typer.Exit(2)


def _load(params: Path, ablation: str | None = None) -> Params:
    try:
        settings = load_params(params)
        return settings.ablate(ablation) if ablation else settings
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="output folder")] = Path("reports"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """The paper's Tables 2-4 (markdown and CSV) and the scaling plot, from metrics/."""
    from flows.evaluate import report_flow

    typer.echo(f"report: {report_flow(_load(params), out)}")


TargetsOption = Annotated[
    list[str] | None,
    typer.Option("--target", help="dvc.yaml stage(s) to bring up to date; default: all"),
]


@app.command()
def pipeline(
    target: TargetsOption = None,
    repo: Annotated[Path, typer.Option(help="the project folder (dvc.yaml)")] = Path("."),
) -> None:
    """Every stage of dvc.yaml as a Prefect task; DVC skips the ones that are up to date."""
    from flows.pipeline import StageFailed, pipeline_flow

    try:
        outcomes = pipeline_flow(str(repo), target)
    except StageFailed as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    for outcome in outcomes:
        typer.echo(f"{outcome.stage:<28}{outcome.status:<12}{outcome.seconds:>8.1f} s")


@app.command()
def serve(
    cron: Annotated[str, typer.Option(help="schedule, e.g. '0 3 * * *' (03:00 every day)")],
    name: Annotated[str, typer.Option(help="deployment name")] = "scheduled",
    timezone: Annotated[str, typer.Option(help="the cron's time zone")] = "UTC",
    target: TargetsOption = None,
    repo: Annotated[Path, typer.Option(help="the project folder (dvc.yaml)")] = Path("."),
) -> None:
    """Serve the pipeline as a Prefect deployment on a cron schedule (needs a Prefect server)."""
    from prefect.schedules import Cron
    from prefect.settings import PREFECT_API_URL

    from flows.pipeline import pipeline_flow

    if not PREFECT_API_URL.value():
        typer.echo(
            "error: schedules need a running Prefect server, and PREFECT_API_URL is not set. "
            "Start one with `prefect server start`, then "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api` (or a remote server's URL).",
            err=True,
        )
        raise typer.Exit(2)
    pipeline_flow.serve(
        name=name,
        schedule=Cron(cron, timezone=timezone),
        parameters={"repo": str(repo.resolve()), "targets": target},
    )


@app.command("use-profile")
def use_profile(
    profile: Annotated[Path, typer.Argument(help="a params file, e.g. infra/profiles/paper.yaml")],
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Make a profile the project's params.yaml (validated first); prints what changed."""
    new, old = _load(profile), _load(params)
    changed = _changed_keys(old.model_dump(mode="json"), new.model_dump(mode="json"))
    params.write_text(profile.read_text(encoding="utf-8"), encoding="utf-8")
    typer.echo(f"{params} is now {profile}: {len(changed)} keys changed")
    for key in changed:
        typer.echo(f"  {key}")
    typer.echo("`dvc status` lists the stages this reruns; `regionedit pipeline` reruns them.")


def _changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return keys
