"""FLOPs, seconds and peak memory per component of one training step and one edit, for a ladder
of speed settings, each measured against the setting before it in the same run (issue 8).

    python benchmarks/train_step.py --size tiny|paper --device cpu|cuda [--batch B]
                                    [--generator sd|sdxl|flux-fill]
                                    [--flops-only] [--json OUT] [--repeats R]

--size tiny: the models and method params.yaml names (the tiny zoo: `regionedit zoo` first);
with --generator, the zoo's folder of that generator instead of params.yaml's.
--size paper: the generator's paper profile (infra/profiles/paper.yaml: SD 1.5 inpainting at 512
pixels, K = 20; paper-sdxl.yaml and paper-flux.yaml: SDXL inpainting and FLUX.1 Fill at 1024) on
paper-size architectures with random weights, nothing downloaded: open_clip's own ViT-L-14
config, a FLAN-T5-base-shaped encoder and the generator. SD 1.5's is written once by the zoo's
builders into --cache and loaded back through the project's loaders; SDXL's and FLUX's are too
large for that and are built in memory (paper_generators.py), so on a CPU they count FLOPs only.

Components are the stages RegionEditModel.forward and Editor.edit mark (breakdown.py). FLOPs
come from torch's FLOP counter around one step; unless the counted ops are computed anyway (a
timed run on a GPU), they are counted without being done (breakdown.shape_only), so a
paper-size count takes seconds on a CPU. Times are medians of --repeats runs after a warm-up.
The mask threshold is set to 0 so that an edit never skips generation: the cost of a step
does not depend on the mask, only an empty edit mask skips the generator.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from breakdown import Breakdown, FlopBreakdown, shape_only
from diffusers import SchedulerMixin
from paper_generators import IN_MEMORY, paper_generator

from components.config import MethodConfig, ModelsConfig, Params, load_params
from components.data.demo_edits import DEMO_EDITS, demo_edit_batch, demo_photo
from components.describe.describer import Describer
from components.editing import Editor
from components.generation import GENERATORS, generator_on
from components.method.build import build_encoders, build_region_edit_model
from components.method.features import cacheable_features
from components.method.model import RegionEditModel, Stage
from components.models.generators import swapped_scheduler
from components.random_models import inpainting as sd_zoo
from components.random_models import text as t5_zoo
from components.random_models.build import GENERATOR_FOLDERS
from components.training.compute import flop_counter

PROFILES = Path(__file__).resolve().parents[1] / "infra" / "profiles"
PAPER_PROFILES = {
    "sd": PROFILES / "paper.yaml",
    "sdxl": PROFILES / "paper-sdxl.yaml",
    "flux-fill": PROFILES / "paper-flux.yaml",
}
STEP_PARTS = ("encoders", "head", "generation", "composition", "clip_on_result", "losses")


@dataclass(frozen=True)
class Setting:
    name: str
    # `method` keys this setting changes: values, or functions of the profile's method
    method: dict[str, Any] = field(default_factory=dict)
    bf16: bool | None = None  # autocast the forward in bf16, as train.precision bf16-mixed does
    cached: bool | None = None  # frozen features precomputed by the `features` stage
    kept: bool = True  # False: compared with the setting before it, then dropped
    cuda_only: bool = False
    same_flops: bool = False  # the same counted ops on the same shapes as the setting before
    training_only: bool = False  # changes only the training step: the edit's count is reused


DPM_SOLVER = "DPMSolverMultistepScheduler"  # DPM-Solver++ (2M), diffusers' few-step sampler
# Each setting builds on the last kept one before it. Classifier-free guidance is batched
# ([unconditional; text] in one UNet call) in every setting: the generator has no other path.
SETTINGS = (
    Setting("baseline"),
    Setting("bf16 autocast", bf16=True, same_flops=True),
    Setting("channels_last", {"channels_last": True}, same_flops=True),
    Setting("cached features", cached=True),
    Setting("K=8 DPM-Solver++", {"steps": 8, "scheduler": DPM_SOLVER}),
    Setting("K=4 DPM-Solver++", {"steps": 4, "scheduler": DPM_SOLVER}),
    Setting("approx masked latent", {"masked_image_latents": "approx"}),
    Setting("latent composition", {"composition": "latent"}, kept=False),
    Setting("eager attention", {"attention": "eager"}, kept=False, same_flops=True),
    Setting("K=2 DPM-Solver++", {"steps": 2, "scheduler": DPM_SOLVER}, kept=False),
    Setting("no guidance", {"guidance_scale": 1.0}, kept=False),  # what CFG costs, not the paper's
    Setting("compiled UNet", {"compile_unet": True}, cuda_only=True, same_flops=True),  # last
)
# SDXL and FLUX.1 Fill: the paper-faithful setting, bf16, the feature cache and fewer steps with
# the checkpoint's own sampler (FLUX's flow-matching Euler has no DPM-Solver counterpart here)
OTHER_GENERATOR_SETTINGS = (
    Setting("baseline"),
    Setting("bf16 autocast", bf16=True, same_flops=True),
    Setting("cached features", cached=True),
    Setting("K=4", {"steps": 4}),
)


def method_values(values: dict[str, Any], method: MethodConfig) -> dict[str, Any]:
    """A setting's `method` keys with the functions of the profile's method evaluated on it."""
    return {key: value(method) if callable(value) else value for key, value in values.items()}


def half_side(method: MethodConfig) -> int:
    """The training step's generation side at half the resolution (paper: 256 of 512 px)."""
    return method.resolution // 2


# The training step's own generator (method.train_*; README, Training cost), each setting
# against the paper-faithful one, with the feature cache and bf16 (timed on a GPU; counted in
# fp32 like every row); the edit keeps the profile's settings.
# benchmarks/training_cost.py trains the world's head under the same settings.
TRAINING_COST_SETTINGS = (
    Setting("paper-faithful training", bf16=True, cached=True),  # bf16: as train.precision
    *(
        Setting(name, method, kept=False, training_only=True)
        for name, method in {
            "train K=4": {"train_steps": 4},
            "train K=2": {"train_steps": 2},
            "train K=1": {"train_steps": 1},
            "train K=4 unguided": {"train_steps": 4, "train_guidance_scale": 1.0},
            "train K=4 at half resolution": {"train_resolution": half_side, "train_steps": 4},
            "train K=2 at half resolution": {"train_resolution": half_side, "train_steps": 2},
            "train K=1 at half resolution": {"train_resolution": half_side, "train_steps": 1},
            "train K=4 unguided at half resolution": {
                "train_resolution": half_side,
                "train_steps": 4,
                "train_guidance_scale": 1.0,
            },
            "train K=2 unguided at half resolution": {
                "train_resolution": half_side,
                "train_steps": 2,
                "train_guidance_scale": 1.0,
            },
        }.items()
    ),
)
LADDERS = {"speed": SETTINGS, "training-cost": TRAINING_COST_SETTINGS}
BASELINE = {"attention": "sdpa", "channels_last": False, "compile_unet": False, "tau": 0.0}


@dataclass
class Bench:
    """The loaded frozen models, the batch and where to run."""

    model: RegionEditModel  # the frozen parts every setting shares
    describer: Describer
    batch: tuple[torch.Tensor, list[str], list[str], list[str]]
    device: torch.device
    scheduler: SchedulerMixin  # the generator's own sampler; settings swap in compatible ones


def paper_models(cache: Path, seed: int, sd: bool = True) -> ModelsConfig:
    """Paper-size random models: built once into `cache` by the zoo's builders (SD 1.5
    inpainting only when `sd`: the other generators are built in memory)."""
    builders = {
        "t5": lambda out: t5_zoo.build_instruction_encoder(out, seed, t5_zoo.PAPER_SHAPE),
        "sd-inpainting": lambda out: sd_zoo.build_inpainting(out, seed, shape=sd_zoo.PAPER_SHAPE),
    }
    if not sd:
        del builders["sd-inpainting"]
    for name, build in builders.items():
        done = cache / f"{name}.built"
        if not done.exists():
            print(f"building the paper-size {name} into {cache / name} (once)", flush=True)
            build(cache / name)
            done.touch()
    return ModelsConfig(
        clip="ViT-L-14",  # open_clip's config; no pretrained tag: random weights, no download
        clip_pretrained=None,
        instruction_encoder=str(cache / "t5"),
        inpainting=str(cache / "sd-inpainting"),
    )


def load_bench(params: Params, device: torch.device, batch: int, generator=None) -> Bench:
    """The frozen models params name (or `generator` instead of models.inpainting's)."""
    torch.manual_seed(params.seed)
    if generator is None:
        model = build_region_edit_model(params.models, params.method)
    else:
        encoders = build_encoders(params.models, params.method.instruction_tokens)
        model = RegionEditModel(encoders, generator, params.method)
    model = model.to(device)
    model.generator.to(device)
    images, t_o, t_ins, t_e = demo_edit_batch(len(DEMO_EDITS), params.method.resolution)
    rows = [i % len(DEMO_EDITS) for i in range(batch)]
    data = (
        images[rows].to(device),
        [t_o[i] for i in rows],
        [t_ins[i] for i in rows],
        [t_e[i] for i in rows],
    )
    template = params.describe.model_copy(update={"backend": "template"})  # texts are given
    describer = Describer.from_params(params.model_copy(update={"describe": template}))
    return Bench(model, describer, data, device, model.generator.parts.scheduler)


def configured(bench: Bench, method: MethodConfig) -> RegionEditModel:
    """The shared frozen parts with `method`'s generator options and a fresh seeded head."""
    shared = bench.model.generator
    parts = replace(shared.parts, scheduler=swapped_scheduler(bench.scheduler, method.scheduler))
    generator = generator_on(
        shared.family, parts, method.attention, method.channels_last, method.compile_unet
    )
    torch.manual_seed(0)
    return RegionEditModel(bench.model.encoders, generator, method).to(bench.device)


def step_runner(
    model: RegionEditModel, bench: Bench, bf16: bool, cached: bool
) -> Callable[[Stage], None]:
    """One training step (forward, backward, optimizer step) with its stages marked."""
    images, t_o, t_ins, t_e = bench.batch
    features = None
    if cached:  # the `features` stage's work, done once, outside the step
        side = model.cfg.in_training.resolution
        features = cacheable_features(
            model.encoders, model.generator, images, t_o, t_ins, t_e, side
        )
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    device = bench.device

    def run(stage: Stage) -> None:
        model.train()
        with _autocast(device, bf16):
            out = model(
                images, t_o, t_ins, t_e, torch.Generator(device).manual_seed(0), stage, features
            )
        with stage("backward"):
            optimizer.zero_grad()
            out.terms["total"].backward()
            optimizer.step()

    return run


def edit_runner(model: RegionEditModel, bench: Bench, bf16: bool) -> Callable[[Stage], None]:
    """One edit of a demo photo through the public Editor, stages marked."""
    photo, original, instruction, target = DEMO_EDITS[0]
    image = demo_photo(photo)
    editor = Editor(model, bench.describer)

    def run(stage: Stage) -> None:
        with _autocast(bench.device, bf16):
            editor.edit(image, instruction, original, target, seed=0, stage=stage)

    return run


def count_flops(run: Callable[[Stage], None], compute: bool) -> dict[str, int]:
    """FLOPs per component of one `run`; with compute=False the counted ops are skipped."""
    with nullcontext() if compute else shape_only(), flop_counter() as counter:
        flops = FlopBreakdown(counter)
        run(flops)
    return dict(flops.flops)


def time_runs(run: Callable[[Stage], None], device: torch.device, repeats: int) -> tuple:
    """(per-component medians and peaks over `repeats` runs, seconds of the warm-up run)."""
    start = time.perf_counter()
    run(Breakdown(device))
    warmup = time.perf_counter() - start
    timer = Breakdown(device)
    for _ in range(repeats):
        run(timer)
    return timer.rows(), warmup


def measure(
    bench: Bench,
    method: MethodConfig,
    state: dict[str, Any],
    repeats: int,
    flops_only: bool,
    flops_as: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One setting: FLOPs (or, per kind in `flops_as`, those of a result with the same
    arithmetic) and, unless `flops_only`, seconds and peaks per component, for a step and an
    edit."""
    model = configured(bench, method)

    def runners(bf16: bool) -> dict[str, Callable[[Stage], None]]:
        return {
            "training_step": step_runner(model, bench, bf16, state["cached"]),
            "edit": edit_runner(model, bench, bf16),
        }

    # Counted in fp32: precision changes no counted shape (and CPUs lack some bf16 backward
    # kernels).
    flops_as = flops_as or {}
    counted = runners(bf16=False) if len(flops_as) < 2 else {}
    out = {}
    for kind in ("training_step", "edit"):
        if kind in flops_as:
            flops = {name: row["flops"] for name, row in flops_as[kind]["components"].items()}
        else:
            flops = count_flops(counted[kind], compute=False)
        report: dict[str, Any] = {
            "components": {name: {"flops": n} for name, n in flops.items()},
            "flops": sum(flops.values()),
        }
        out[kind] = report
    if not flops_only:
        for kind, run in runners(state["bf16"]).items():
            report = out[kind]
            rows, report["warmup_seconds"] = time_runs(run, bench.device, repeats)
            for name, row in rows.items():
                report["components"].setdefault(name, {}).update(row)
            report["seconds"] = sum(row["median_seconds"] for row in rows.values())
            report["peak_bytes"] = max(row["peak_bytes"] for row in rows.values())
    batch = len(bench.batch[1])
    step = out["training_step"]
    step["flops_per_sample"] = step["flops"] / batch
    if "seconds" in step:
        step["samples_per_second"] = batch / step["seconds"]
    return out


def run_ladder(
    bench: Bench,
    method: MethodConfig,
    repeats: int,
    flops_only: bool,
    budget_seconds: float | None = None,
    settings: tuple[Setting, ...] = SETTINGS,
    after_each: Callable[[list[dict[str, Any]]], None] = lambda results: None,
) -> list[dict[str, Any]]:
    """Every setting in order, each built on the last kept one; failures are recorded.
    `after_each` sees the results so far (to save them before a run can be cut short)."""
    kept: dict[str, Any] = {"method": dict(BASELINE), "bf16": False, "cached": False}
    kept_name, results, start = None, [], time.perf_counter()
    by_name: dict[str, dict[str, Any]] = {}
    for setting in settings:
        state = {
            "method": method_values({**kept["method"], **setting.method}, method),
            "bf16": kept["bf16"] if setting.bf16 is None else setting.bf16,
            "cached": kept["cached"] if setting.cached is None else setting.cached,
        }
        entry: dict[str, Any] = {"name": setting.name, "vs": kept_name, **state}
        results.append(entry)
        by_name[setting.name] = entry
        if setting.cuda_only and bench.device.type != "cuda":
            entry["skipped"] = "torch.compile is measured on a GPU only (CPU compile: minutes)"
        elif budget_seconds is not None and time.perf_counter() - start > budget_seconds:
            entry["skipped"] = f"time budget of {budget_seconds:.0f} s spent"
        else:
            print(f"[{time.perf_counter() - start:7.1f} s] {setting.name}", flush=True)
            before = by_name.get(kept_name, {})
            kinds = ("training_step", "edit") if setting.same_flops else ()
            kinds = ("edit",) if setting.training_only else kinds
            flops_as = {kind: before[kind] for kind in kinds if kind in before}
            if flops_as:  # not recounted: the same arithmetic
                entry["flops_from"], entry["flops_reused"] = kept_name, list(flops_as)
            try:
                config = method.model_copy(update=state["method"])
                entry |= measure(bench, config, state, repeats, flops_only, flops_as)
            except Exception as err:  # an OOM or a failure is a result; the ladder goes on
                entry["error"] = f"{type(err).__name__}: {err}"
                traceback.print_exc()
                if bench.device.type == "cuda":
                    torch.cuda.empty_cache()
        if setting.kept and "skipped" not in entry and "error" not in entry:
            kept, kept_name = state, setting.name
        after_each(results)
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    print(
        f"\n{'setting':<36}{'vs':<22}{'GFLOP/sample':>13}{'GFLOP/edit':>11}"
        f"{'s/step':>9}{'samples/s':>10}{'speed-up':>9}{'peak MiB':>10}"
    )
    by_name = {entry["name"]: entry for entry in results}
    for entry in results:
        step, edit = entry.get("training_step", {}), entry.get("edit", {})
        note = entry.get("skipped") or entry.get("error")
        if note:
            print(f"{entry['name']:<36}{entry['vs'] or '':<22}  {note[:90]}")
            continue
        rate = step.get("samples_per_second")
        before = by_name.get(entry["vs"], {}).get("training_step", {}).get("samples_per_second")
        print(
            f"{entry['name']:<36}{entry['vs'] or '':<22}"
            f"{_num(step.get('flops_per_sample'), 1e-9, 13, '.4g')}"
            f"{_num(edit.get('flops'), 1e-9, 11, '.4g')}{_num(step.get('seconds'), 1, 9, '.3f')}"
            f"{_num(rate, 1, 10, '.2f')}"
            f"{_num(rate / before if rate and before else None, 1, 9, '.2f')}"
            f"{_num(step.get('peak_bytes'), 2**-20, 10, '.0f')}"
        )


def _num(value: float | None, scale: float, width: int, spec: str) -> str:
    return f"{'-':>{width}}" if value is None else f"{value * scale:>{width}{spec}}"


def _autocast(device: torch.device, bf16: bool) -> AbstractContextManager:
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "paper"], default="tiny")
    parser.add_argument("--generator", choices=list(GENERATORS), help="default: params.yaml's")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", type=int, help="default: 4 (tiny), 1 (paper, CPU), 32 (GPU)")
    parser.add_argument("--flops-only", action="store_true", help="count FLOPs, time nothing")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after a warm-up")
    parser.add_argument("--params", default="params.yaml", help="--size tiny: the params file")
    parser.add_argument("--cache", default="/tmp/regionedit-paper-models", help="paper models")
    parser.add_argument("--budget-seconds", type=float, help="skip settings started after this")
    parser.add_argument("--settings", help="comma-separated names of settings to run (default all)")
    parser.add_argument(
        "--ladder",
        choices=list(LADDERS),
        default="speed",
        help="speed: the speed settings of issue 8; training-cost: the training step's generator",
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    family = args.generator or "sd"
    generator = None
    if args.size == "paper":
        params = load_params(PAPER_PROFILES[family])
        models = paper_models(Path(args.cache), params.seed, sd=family not in IN_MEMORY)
        params = params.model_copy(update={"models": models})
        batch = args.batch or (32 if device.type == "cuda" else 1)
        if family in IN_MEMORY:
            if device.type == "cpu" and not args.flops_only:
                raise SystemExit(
                    f"--generator {family} at paper size does not fit this machine's memory: "
                    "on a CPU add --flops-only (its weights are then one expanded zero)"
                )
            generator = paper_generator(family, device, hollow=device.type == "cpu")
    else:
        params = load_params(args.params)
        if args.generator:
            folder = Path(params.models.zoo) / GENERATOR_FOLDERS[family]
            models = params.models.model_copy(update={"inpainting": str(folder)})
            params = params.model_copy(update={"models": models})
        batch = args.batch or 4
    ladder = LADDERS[args.ladder]
    if family in IN_MEMORY and args.ladder == "speed":
        ladder = OTHER_GENERATOR_SETTINGS
    settings = ladder
    if args.settings:
        wanted = [name.strip() for name in args.settings.split(",")]
        unknown = set(wanted) - {s.name for s in ladder}
        if unknown:
            raise SystemExit(
                f"--settings: unknown {sorted(unknown)}; choose from {[s.name for s in ladder]}"
            )
        settings = tuple(s for s in ladder if s.name in wanted)
    bench = load_bench(params, device, batch, generator)
    print(
        f"{args.size} size, generator {bench.model.generator.family}, on {machine(device)}: "
        f"batch {batch}, resolution "
        f"{params.method.resolution}, K = {params.method.steps} at baseline, "
        f"{'FLOPs only' if args.flops_only else f'median of {args.repeats}'}",
        flush=True,
    )
    report = {
        "size": args.size,
        "generator": bench.model.generator.family,
        "machine": machine(device),
        "torch": torch.__version__,
        "batch": batch,
        "resolution": params.method.resolution,
        "flops": "counted by torch.utils.flop_counter without computing (breakdown.shape_only)",
        "settings": [],
    }

    def save(results: list[dict[str, Any]]) -> None:
        if args.json:
            text = json.dumps(report | {"settings": results}, indent=2) + "\n"
            Path(args.json).write_text(text, encoding="utf-8")

    report["settings"] = run_ladder(
        bench, params.method, args.repeats, args.flops_only, args.budget_seconds, settings, save
    )
    print_table(report["settings"])
    return report


if __name__ == "__main__":
    main()
