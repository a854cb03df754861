"""Typed view of params.yaml: parsed once at the edge, then passed down as plain objects."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, NamedTuple

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from components.errors import InputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrepareConfig(_Strict):
    """How `prepare` turns a source of images + captions into WebDataset shards."""

    # `demo`, `world`, a folder, a folder of .tar shards, or a folder/file of .parquet
    source: str = "demo"
    image_column: str = "image"  # parquet sources: column with images ({bytes, path} or bytes)
    caption_column: str = "caption"  # parquet sources: column with the caption text
    min_side: int = Field(64, ge=1)  # images with a shorter side are rejected
    max_pixels: int = Field(50_000_000, ge=1)  # larger images are rejected before decoding
    samples_per_shard: int = Field(1000, ge=1)  # samples per WebDataset tar
    workers: int = Field(0, ge=0)  # decoding processes; 0 = one per CPU core
    demo_scenes: int = Field(64, ge=0)  # procedurally generated scenes added to the demo photos


class WorldZooConfig(_Strict):
    """How long, in what batches and at what rate each of the world's frozen models trains
    (`regionedit world-zoo`): `world.zoo` is the quick budget of the tests' world models,
    `world.release` the release's (README, The world's release)."""

    scenes: int = Field(8192, ge=1)  # training scenes of the zoo (its own seed namespace)
    clip_steps: int = Field(400, ge=1)  # the method's CLIP
    metric_clip_steps: int = Field(200, ge=1)  # the metric CLIP
    vae_steps: int = Field(1000, ge=1)  # the inpainter's VAE
    unet_steps: int = Field(800, ge=1)  # the inpainter's UNet (its text encoder is frozen)
    instruction_steps: int = Field(0, ge=0)  # the T5 instruction encoder; 0: models/zoo's random
    clip_batch: int = Field(64, ge=2)  # images a CLIP step (each with its swapped captions)
    clip_lr: float = Field(1e-3, gt=0)  # both CLIPs' peak learning rate
    vae_batch: int = Field(8, ge=1)
    vae_lr: float = Field(2e-3, gt=0)
    unet_batch: int = Field(32, ge=1)
    unet_lr: float = Field(1e-3, gt=0)
    checks: int = Field(48, ge=1)  # held-out edits of the inpainter's check
    checkpoint_minutes: float = Field(5.0, gt=0)  # how often a resumable run saves its state
    curve_points: int = Field(0, ge=0)  # checks measured along each model's training (0: none)


class WorldConfig(_Strict):
    """The generated world (DESIGN §10): scenes whose edits have known answers."""

    side: int = Field(64, ge=32)  # pixels of a scene's side; below 32 a small star is a blur
    scenes: int = Field(640, ge=1)  # training scenes `prepare` draws when prepare.source: world
    test_seed: int = 1000  # `regionedit world`'s seed; test scenes use their own RNG namespace
    test_count: int = Field(48, ge=1)  # sessions of the test set (one edit each, some two)
    checks: int = Field(48, ge=1)  # held-out edits of world-checks (inpainter, landscape)
    zoo: WorldZooConfig = WorldZooConfig()
    release: WorldZooConfig = WorldZooConfig()


class ModelsConfig(_Strict):
    """Every model by a library id or a local folder, loaded by its library's own loader.

    The embedded default points at the tiny random zoo that `regionedit zoo` writes;
    infra/profiles/paper.yaml names the real checkpoints.
    """

    zoo: str = "models/zoo"  # where `regionedit zoo` writes the tiny models
    world: str = "models/world"  # the world's release, in git (`regionedit world-zoo --release`)
    clip: str = "local-dir:models/zoo/clip"  # open_clip name; paper: ViT-L-14
    clip_pretrained: str | None = None  # open_clip pretrained tag; paper: openai
    instruction_encoder: str = "models/zoo/t5"  # paper: google/flan-t5-base
    inpainting: str = "models/zoo/sd-inpainting"  # diffusers folder or id of an SD inpainting model
    captioner: str = "models/zoo/captioner"  # paper: Qwen/Qwen2.5-VL-7B-Instruct
    writer: str = "models/zoo/writer"  # paper: Qwen/Qwen2.5-7B-Instruct
    metric_clip: str = "local-dir:models/zoo/metric-clip"  # MagicBrush eval: ViT-B-32
    metric_clip_pretrained: str | None = None  # MagicBrush eval: openai
    dino: str = "models/zoo/dino"  # MagicBrush eval: facebook/dino-vits16
    baseline: str = "models/zoo/ip2p"  # InstructPix2Pix; paper: timbrooks/instruct-pix2pix
    trust_remote_code: bool = False  # never run code shipped with a checkpoint unless asked


class MethodConfig(_Strict):
    """The region head, its losses (Eqs. 4-11) and the frozen generator in the loop (App. A)."""

    head: Literal["paper", "residual"] = "residual"  # Eqs. 1-3 as written, or pre-norm blocks
    heads: int = Field(4, ge=1)  # attention heads of the residual form (the paper's: one)
    tau: float = Field(0.5, ge=0.0, le=1.0)  # threshold on P_region for the hard mask
    alpha: float = 1.0  # weight of L_semAlign
    beta: float = 1.0  # weight of the CLIP losses
    lambda_g: float = 1.0  # L_CLIPg: edit vs target description
    lambda_d: float = 1.0  # L_CLIPd: edit direction vs description direction
    # L_CLIPs: patch-similarity structure kept, a sum over the N^2 entries (Eq. 9); the default
    # is 1/N^2 for the tiny zoo's N = 64 tokens (the paper profile: 1/65,536 for N = 256)
    lambda_s: float = 1 / 4096
    resolution: int = Field(64, ge=16)  # generation resolution, a multiple of the VAE factor
    # (FLUX: of twice it); the generator is the one models.inpainting's folder holds (README)
    steps: int = Field(4, ge=1)  # K denoising steps
    guidance_scale: float = Field(7.5, ge=1.0)  # classifier-free (FLUX.1 dev: distilled) guidance
    scheduler: str | None = None  # a diffusers scheduler class; None = the checkpoint's (SD: PNDM)
    masked_image_latents: Literal["exact", "approx"] = "exact"  # see DESIGN §4
    composition: Literal["pixel", "latent"] = "pixel"  # where res = M*gen + (1-M)*src is formed
    attention: Literal["sdpa", "eager"] = "sdpa"  # UNet attention: fused SDPA or eager (FLUX: sdpa)
    channels_last: bool = False  # UNet and VAE convolutions in channels_last memory (GPU speed)
    compile_unet: bool = False  # torch.compile the UNet or FLUX's transformer (GPU; first steps)
    proposal_dilation: int = Field(1, ge=0)  # grid cells generated around the hard mask
    min_proposal_cells: int = Field(1, ge=1)  # highest-P cells always generated: no dead start
    feather: int = Field(3, ge=0)  # pixels of soft edge when pasting the source back
    instruction_tokens: int = Field(64, ge=4)  # instruction encoder context
    max_pixels: int = Field(50_000_000, ge=1)  # Editor.edit refuses larger images
    # The generator inside the training step only (README, Training cost): null = as above.
    # CLIP, the head and the composition stay at `resolution`; only the generated content is
    # made at train_resolution and resized up. Inference (Editor, evaluation) keeps the above.
    train_resolution: int | None = Field(None, ge=16)
    train_steps: int | None = Field(None, ge=1)
    train_guidance_scale: float | None = Field(None, ge=1.0)

    @model_validator(mode="after")
    def _train_resolution_fits(self) -> MethodConfig:
        side = self.train_resolution
        if side is not None and side > self.resolution:
            raise ValueError(
                f"method.train_resolution {side} is above method.resolution {self.resolution}: "
                "it only ever saves work; set it at or below the resolution (or null)"
            )
        if side not in (None, self.resolution) and self.composition == "latent":
            raise ValueError(
                "method.train_resolution needs composition: pixel (latent composition decodes "
                "the whole image, so it has no full-resolution source to compose with)"
            )
        return self

    @property
    def in_training(self) -> Generation:
        """The generator's settings inside the training step."""
        return Generation(
            self.train_resolution or self.resolution,
            self.train_steps or self.steps,
            self.guidance_scale if self.train_guidance_scale is None else self.train_guidance_scale,
        )


class Generation(NamedTuple):
    """Where and how the frozen generator runs: pixels of a side, K steps, guidance."""

    resolution: int
    steps: int
    guidance_scale: float


class DescribeConfig(_Strict):
    """`describe`: t_o (MLLM caption) and t_ins, t_e (LLM) for every prepared sample."""

    backend: Literal["template", "transformers", "vllm"] = "template"
    recaption: bool = False  # let the MLLM write t_o even where a caption exists
    prompt_version: str = "v1"  # prompts live in components/describe/prompts/<version>/
    max_attempts: int = Field(3, ge=1)  # a bad answer is retried with a new seed, then rejected
    batch_size: int = Field(8, ge=1)  # prompts per generate() call
    max_new_tokens: int = Field(96, ge=8)
    sampling: Literal["greedy", "sample"] = "greedy"  # retries always sample, with a new seed
    temperature: float = Field(0.7, gt=0.0)
    min_chars: int = Field(3, ge=1)  # answer length bounds, per field
    max_chars: int = Field(300, ge=8)
    shards_per_task: int = Field(1, ge=1)  # one Prefect task per this many shards
    task_runner: Literal["threads", "dask", "ray"] = "threads"
    workers: int = Field(2, ge=1)  # concurrent shard tasks
    cluster: str | None = None  # a running Dask or Ray cluster's address; None = start one here
    task_retries: int = Field(2, ge=0)  # Prefect retries of a crashed shard task (not bad answers)


class TrainConfig(_Strict):
    """Training the region head (Lightning), one run per data scale."""

    batch_size: int = Field(4, ge=1)  # per process; the paper: 256 over 8 GPUs
    lr: float = Field(1e-4, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    warmup_steps: int = Field(0, ge=0)
    length: Literal["steps", "epochs"] = "steps"  # what is equal across scales
    max_steps: int = Field(20, ge=1)  # length: steps; optimizer steps per scale
    epochs: float = Field(1.0, gt=0.0)  # length: epochs; passes over each scale's samples
    gradient_clip_val: float | None = Field(1.0, gt=0.0)  # max global grad norm; null = off
    accelerator: str = "cpu"  # lightning accelerator: cpu, gpu, auto
    devices: int = Field(1, ge=1)  # processes per node; > 1 launches torchrun
    num_nodes: int = Field(1, ge=1)
    strategy: str = "auto"  # ddp when devices * num_nodes > 1
    precision: str = "32-true"  # lightning precision, e.g. bf16-mixed on GPUs
    num_workers: int = Field(0, ge=0)  # dataloader workers per process
    checkpoint_every: int = Field(10, ge=1)  # steps between checkpoints
    image_every: int = Field(10, ge=1)  # steps between image | region | edit grids
    out: str = "checkpoints"  # one folder per scale inside

    def steps_for(self, count: int) -> int:
        """Optimizer steps for a scale of `count` samples: `max_steps` when every scale trains
        as long, else `epochs` passes at the global batch (batch_size x devices x num_nodes)."""
        if self.length == "steps":
            return self.max_steps
        return math.ceil(self.epochs * count / (self.batch_size * self.devices * self.num_nodes))


class EvaluateConfig(_Strict):
    """Evaluation on Emu Edit and MagicBrush, ours beside the InstructPix2Pix baseline."""

    emu_edit: str = "data/benchmarks/emu_edit"  # a folder of the test set's parquet files
    # `test`: the dataset card of facebook/emu_edit_test_set lists validation 2,022 and test 3,589
    # rows (its companion emu_edit_test_set_generations lists them the other way round)
    emu_edit_split: str = "test"
    # the CLIP scoring Emu Edit (open_clip name and tag); None = models.metric_clip, MagicBrush's
    # ViT-B/32: an assumption, since neither Emu Edit's paper nor this paper names its CLIP
    emu_edit_clip: str | None = None
    emu_edit_clip_pretrained: str | None = None
    magicbrush: str = "data/benchmarks/magicbrush"  # the unzipped folder, or its parquet
    # the description file CLIP-T reads; the official script's README passes the local one
    magicbrush_captions: Literal["local", "global"] = "local"
    # t_o for MagicBrush edits: the set's description of the input (global_descriptions.json)
    # instead of the captioner's; the world's sets describe every input exactly
    magicbrush_input_captions: bool = False
    limit: int | None = None  # cases (Emu Edit) or sessions (MagicBrush); None = all
    # InstructPix2Pix as its authors run it: 100 steps (diffusers' default), text guidance 7.5,
    # image guidance 1.5; the embedded default takes 4 steps to keep the tiny zoo fast on CPU
    baseline_steps: int = Field(4, ge=1)
    baseline_guidance_scale: float = Field(7.5, ge=1.0)  # InstructPix2Pix text guidance
    baseline_image_guidance_scale: float = Field(1.5, ge=1.0)  # and image guidance
    grid_rows: int = Field(6, ge=1)  # rows of the input | region | ours | baseline picture
    out: str = "evaluations"  # per-sample outputs, one folder per scale and benchmark


class PairsConfig(_Strict):
    """The pair-trained comparison (dvc.yaml: train-pairs, evaluate-pairs): InstructPix2Pix
    trained on editing pairs of the scenes each scale's head sees as image + caption, then
    evaluated as ours is (README, Trained on pairs). World data only."""

    epochs: float = Field(4.0, gt=0)  # passes over the scale's pairs (train.epochs for ours)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(5e-4, gt=0)
    warmup_steps: int = Field(20, ge=1)
    # InstructPix2Pix drops the instruction, the source image and both, each for this share
    conditioning_dropout: float = Field(0.05, ge=0, le=1 / 3)
    # text-to-image: InstructPix2Pix's start (the inpainter with everything masked, the
    # source's channels at zero); inpainting: the inpainter with nothing masked, the source as
    # its known image (components/world/instruct_pix2pix.py)
    init: Literal["text-to-image", "inpainting"] = "text-to-image"
    out: str = "checkpoints/pairs"  # one diffusers InstructPix2Pix folder per scale


class TrackingConfig(_Strict):
    """MLflow. MLFLOW_TRACKING_URI, when set, wins over `uri`."""

    uri: str = "sqlite:///mlflow.db"  # a SQLite file in the project folder (gitignored)
    experiment: str = "regionedit"


class PipelineConfig(_Strict):
    """`regionedit pipeline` / `serve`: how the DVC stages run as Prefect tasks. No stage reads
    these keys, so changing them reruns nothing."""

    # retries per stage family (the name before '@'); a retry resumes from the stage's persisted
    # outputs (describe parts, training checkpoints, finished edits), so retrying is cheap
    retries: dict[str, int] = {"describe": 2, "train": 1, "evaluate": 1}
    retry_delay_seconds: int = Field(30, ge=0)
    logs: str = "logs/pipeline"  # one log file per stage and flow run


LOSS_WEIGHTS = ("alpha", "beta", "lambda_g", "lambda_d", "lambda_s")  # MethodConfig's (Eqs. 10-11)


class AblationsConfig(_Strict):
    """The paper's loss ablation (Table 4, Figure 6): each ablation trains the method with some
    loss weights at 0, at one scale, and is evaluated as the scales are (dvc.yaml: ablate)."""

    scale: str = "5M"  # a key of `scales`; Table 4's full model is the paper's 5M one
    # ablation -> the MethodConfig loss weights it sets to 0
    zero: dict[str, list[str]] = {
        "no-semalign": ["alpha"],
        "no-clip": ["beta"],
        "no-clip-global": ["lambda_g"],
        "no-clip-direction": ["lambda_d"],
        "no-clip-structure": ["lambda_s"],
    }

    @field_validator("zero")
    @classmethod
    def _known_weights(cls, zero: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, weights in zero.items():
            unknown = sorted(set(weights) - set(LOSS_WEIGHTS))
            if unknown or not weights:
                raise ValueError(
                    f"ablation {name!r} zeroes {weights}: name one or more of {LOSS_WEIGHTS}"
                )
        return zero


class Params(_Strict):
    """The whole of params.yaml."""

    profile: str = "default"  # names the profile in every table row, plot line and MLflow run
    seed: int = 0  # one seed for every random choice (scene generation, scale order)
    prepare: PrepareConfig = PrepareConfig()
    world: WorldConfig = WorldConfig()
    models: ModelsConfig = ModelsConfig()
    method: MethodConfig = MethodConfig()
    describe: DescribeConfig = DescribeConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    pairs: PairsConfig = PairsConfig()
    tracking: TrackingConfig = TrackingConfig()
    pipeline: PipelineConfig = PipelineConfig()
    ablations: AblationsConfig = AblationsConfig()
    # which of `ablations` these params train and evaluate: set by `Params.ablate` (the CLI's
    # --ablation), never by hand; null is the method with every loss
    ablation: str | None = None
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

    @model_validator(mode="after")
    def _ablations_known(self) -> Params:
        if self.ablation is not None:
            zero = self.ablations.zero.get(self.ablation)
            if zero is None or any(getattr(self.method, weight) != 0 for weight in zero):
                raise ValueError(
                    f"ablation {self.ablation!r} is set by --ablation (which zeroes its loss "
                    f"weights), not in a params file: remove it"
                )
        return self

    def known_scales(self, names: list[str]) -> list[str]:
        """`names`, if each is one of `scales` (ConfigError naming the others and the known
        ones); no name at all is an error too."""
        unknown = [name for name in names if name not in self.scales]
        if unknown or not names:
            given = f"unknown scale(s) {unknown}" if unknown else "no --scale given"
            raise ConfigError(f"{given}: --scale must be one of {list(self.scales)}")
        return names

    def override(self, section: str, values: dict[str, object]) -> Params:
        """These params with `values` (those not None) over the keys of `section`, validated as
        that section is (a pydantic ValidationError names the key): the CLI's options."""
        current = getattr(self, section)
        given = {key: value for key, value in values.items() if value is not None}
        merged = type(current).model_validate(current.model_dump() | given)
        return self.model_copy(update={section: merged})

    def ablate(self, name: str) -> Params:
        """These params for ablation `name`: its loss weights at 0, its checkpoints and
        evaluation outputs in folders of their own, and its name on every run and record."""
        if name not in self.ablations.zero:
            raise ConfigError(
                f"unknown ablation {name!r}: ablations.zero has {list(self.ablations.zero)}"
            )
        if self.ablations.scale not in self.scales:
            raise ConfigError(
                f"ablations.scale {self.ablations.scale!r} is not one of scales "
                f"{list(self.scales)}: set it to the scale the ablations train at"
            )
        zeroed = dict.fromkeys(self.ablations.zero[name], 0.0)
        return Params.model_validate(
            self.model_dump()
            | {
                "ablation": name,
                "method": self.method.model_dump() | zeroed,
                "train": self.train.model_dump() | {"out": f"{self.train.out}/ablations/{name}"},
                "evaluate": self.evaluate.model_dump()
                | {"out": f"{self.evaluate.out}/ablations/{name}"},
            }
        )


class ConfigError(InputError):
    """params.yaml (or a profile) is unreadable or does not match the schema."""


def load_params(
    path: str | Path,
    ablation: str | None = None,
    section: str = "",
    overrides: dict[str, tuple[str, object]] | None = None,
) -> Params:
    """Read a params file; any unknown key or wrong type raises ConfigError naming both. With
    `ablation`, the params of that loss ablation (`Params.ablate`); with `overrides`, values
    over the keys of `section`, as {key: (name, value)}: a None value is not given, and a bad
    one raises ConfigError under `name` (the CLI option that gave it)."""
    params = _read_params(Path(path))
    params = params.ablate(ablation) if ablation else params
    if not overrides:
        return params
    try:
        return params.override(section, {key: value for key, (_, value) in overrides.items()})
    except ValidationError as err:
        problem = err.errors()[0]
        key = problem["loc"][0] if problem["loc"] else None
        name = overrides[key][0] if key in overrides else section
        raise ConfigError(f"{name}: {problem['msg']}") from None


def _read_params(path: Path) -> Params:
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


def changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    """`key: old -> new` for every leaf that differs between two nested dicts (two params
    dumps), with dotted keys, in sorted order."""
    keys = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return keys
