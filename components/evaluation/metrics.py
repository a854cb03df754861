"""The benchmarks' metrics, as torchmetrics Metrics: they accumulate over batches and sum over DDP.

Emu Edit, against the *input* image (Emu Edit's definitions):
  CLIP_dir = cos(E_img(edit) - E_img(input), E_txt(output caption) - E_txt(input caption)),
  CLIP_out = cos(E_img(edit), E_txt(output caption)), CLIP_img = cos(E_img(edit), E_img(input)),
  L1 = mean |edit - input| of [0, 1] pixels, DINO = cos(DINO(edit), DINO(input)).
MagicBrush, against the *ground-truth* output (its official `image_eval.py`):
  L1, L2 = mean absolute / squared difference of [0, 1] pixels over all pixels and channels,
  CLIP-I = cos(E_img(gen), E_img(gt)), DINO = cos(DINO(gen), DINO(gt)),
  CLIP-T = cos(E_img(gen), E_txt(caption)), the caption being the ground truth's description
  from the test set's `local_descriptions.json` (or `global_descriptions.json`), keyed by the
  ground-truth file name, as the official script's `--caption_path` reads it.
Known answers, beside them (no published system reports these), for every system: the region
it repainted (a region picture: ours' feathered mask, InstructPix2Pix's changed pixels) and,
where the test set knows the answer (a ground-truth edit region M, >= 128 inside, white =
edited, and a target image: MagicBrush's, and the world's sets, DESIGN §10), how right the edit
is. R is the region's fully repainted pixels (255): the feathered rim around ours' mask blends
the source with the edit, so it is not part of the region the head chose.
  region_fraction = share of the image's pixels repainted (the mean value / 255, in [0, 1]);
  empty_region = 1 where nothing was repainted, so its mean is the share of empty regions;
  region_iou = |R ∩ M| / |R ∪ M|, region_precision = |R ∩ M| / |R|, region_recall =
  |R ∩ M| / |M|, in pixels at M's size (R resized, nearest); the `_grid` three on the head's
  patch grid, a cell inside R or M when any of its pixels is: the cells the head must mark
  for the generator to repaint the whole edit (and no small object leaves the grid empty);
  edit_success = 1 when the edit is the rendered one, judged in pixels, never by a model: of
  the pixels of M that the target changes at least EDIT_INSIDE_SHARE match the target, and
  beyond a band of EDIT_BAND pixels around M at least EDIT_OUTSIDE_SHARE match the input, a
  pixel matching when no channel differs by more than EDIT_TOLERANCE on [0, 1].
Before L1 and L2 the edited image is resized (bicubic) to the size of the image it is compared
with. CLIP embeddings are unit length before any difference is taken; DINO's is the CLS token
of the last hidden state. The metric models (CLIP ViT-B/32 and DINO ViT-S/16 in MagicBrush's
evaluation) are loaded by the caller and passed in as `MetricModels`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torchmetrics import Metric
from torchvision import transforms
from transformers import ViTModel

from components.data.images import to_rgb
from components.editing import REGION_THRESHOLD
from components.method.mask import dilate
from components.models.loading import freeze, load_clip, load_dino

EMU_EDIT_METRICS = ("clip_dir", "clip_out", "clip_img", "l1", "dino")
MAGICBRUSH_METRICS = ("l1", "l2", "clip_i", "dino", "clip_t")
OVERLAP_METRICS = ("region_iou", "region_precision", "region_recall")  # in pixels
GRID_METRICS = ("region_iou_grid", "region_precision_grid", "region_recall_grid")
KNOWN_ANSWER_METRICS = (*OVERLAP_METRICS, *GRID_METRICS, "edit_success")
REGION_METRICS = ("region_fraction", "empty_region", *KNOWN_ANSWER_METRICS)
DISTRACTOR_GROUPS = ("distractor", "no distractor")  # is a similar object beside the edited one?
REPAINTED = 255  # a pixel of a system's region is in R from here on: the edit replaced it
# edit_success: the world's renderer is the judge (DESIGN §10)
EDIT_TOLERANCE = 0.2  # on [0, 1], per channel: what bicubic resizing and the VAE may move
EDIT_INSIDE_SHARE = 0.8  # of the ground-truth region that must look like the target
EDIT_OUTSIDE_SHARE = 0.95  # of the rest (beyond the band) that must still look like the input
EDIT_BAND = 2  # pixels around the ground-truth region left unjudged: feathering may touch them
# MagicBrush's DINO preprocessing. It belongs to the protocol, not to the checkpoint: the hub's
# facebook/dino-vits16 processor resizes straight to 224x224 instead.
DINO_TRANSFORM = transforms.Compose(
    [
        transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ]
)


class MetricModels(nn.Module):
    """The frozen metric embedders: CLIP images and texts, DINO images; all unit length."""

    def __init__(
        self,
        clip: nn.Module,
        clip_preprocess: Callable[[Image.Image], Tensor],
        clip_tokenizer: Callable[..., Tensor],
        dino: ViTModel,
    ) -> None:
        super().__init__()
        self.clip, self.dino = freeze(clip), freeze(dino)
        self.clip_preprocess, self.clip_tokenizer = clip_preprocess, clip_tokenizer

    def train(self, mode: bool = True) -> MetricModels:
        return super().train(False)  # frozen parts never switch to training behaviour

    @property
    def device(self) -> torch.device:
        return next(self.clip.parameters()).device

    @torch.no_grad()
    def clip_images(self, images: Sequence[Image.Image]) -> Tensor:
        pixels = torch.stack([self.clip_preprocess(to_rgb(image)) for image in images])
        return F.normalize(self.clip.encode_image(pixels.to(self.device)), dim=-1)

    @torch.no_grad()
    def clip_texts(self, texts: Sequence[str]) -> Tensor:
        tokens = self.clip_tokenizer(list(texts)).to(self.device)
        return F.normalize(self.clip.encode_text(tokens), dim=-1)

    @torch.no_grad()
    def dino_images(self, images: Sequence[Image.Image]) -> Tensor:
        pixels = torch.stack([DINO_TRANSFORM(to_rgb(image)) for image in images])
        hidden = self.dino(pixel_values=pixels.to(self.device)).last_hidden_state
        return F.normalize(hidden[:, 0], dim=-1)


def load_metric_models(clip: str, clip_pretrained: str | None, dino: str) -> MetricModels:
    """`models.metric_clip`, `models.metric_clip_pretrained` and `models.dino`, loaded."""
    clip_model, preprocess, tokenizer = load_clip(clip, clip_pretrained)
    _, dino_model = load_dino(dino)  # its processor is not MagicBrush's: see DINO_TRANSFORM
    return MetricModels(clip_model, preprocess, tokenizer, dino_model)


def cosine(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise cosine similarity, (B, d) x (B, d) -> (B,); 0 where a row is all zeros."""
    return F.cosine_similarity(a, b, dim=-1)


def clip_direction(
    edited: Tensor, source: Tensor, target_text: Tensor, source_text: Tensor
) -> Tensor:
    """CLIP_dir: does the image move in CLIP space the way the captions do?"""
    return cosine(edited - source, target_text - source_text)


def pixel_distances(image: Image.Image, reference: Image.Image) -> tuple[float, float]:
    """(L1, L2): mean absolute and mean squared difference of RGB pixels in [0, 1], over all
    pixels and channels, after resizing `image` (bicubic) to `reference`'s size."""
    resized = to_rgb(image).resize(reference.size, Image.Resampling.BICUBIC)
    difference = np.asarray(resized, np.float64) / 255 - np.asarray(to_rgb(reference)) / 255
    return float(np.abs(difference).mean()), float(np.square(difference).mean())


@dataclass(frozen=True)
class KnownAnswer:
    """What a test set knows about one edit, at the benchmark image's size (DESIGN §10)."""

    source: Image.Image  # the edit's input
    mask: Image.Image  # "L", white = the ground-truth edit region
    target: Image.Image  # the rendered ground-truth output (MagicBrush's `output`)


class Overlap(NamedTuple):
    """A predicted region against the ground truth; NaN where a ratio has nothing to divide by."""

    iou: float
    precision: float
    recall: float


def inside(
    region: Image.Image, size: tuple[int, int] | None = None, threshold: int = REGION_THRESHOLD
) -> np.ndarray:
    """The pixels of a region or mask picture that are inside (>= `threshold`), at `size`
    (nearest) if given."""
    picture = region.convert("L")
    if size is not None:
        picture = picture.resize(size, Image.Resampling.NEAREST)
    return np.asarray(picture) >= threshold


def on_grid(pixels: np.ndarray, grid: int) -> np.ndarray:
    """Pixels -> the head's grid x grid patch cells (the model sees the image squashed to a
    square, so a cell covers 1/grid of each side); a cell is inside when any of its pixels is."""
    share = F.adaptive_max_pool2d(torch.from_numpy(pixels).double()[None, None], grid)
    return (share[0, 0] > 0).numpy()


def overlap(predicted: np.ndarray, truth: np.ndarray) -> Overlap:
    """IoU (1.0 when both are empty), precision (NaN when nothing was predicted, so it is not
    counted: empty_region counts those) and recall (NaN when the truth is empty)."""
    both = float(np.logical_and(predicted, truth).sum())
    union = float(np.logical_or(predicted, truth).sum())
    return Overlap(
        1.0 if union == 0 else both / union,
        _ratio(both, float(predicted.sum())),
        _ratio(both, float(truth.sum())),
    )


def region_overlap(region: Image.Image, mask: Image.Image, grid: int | None = None) -> Overlap:
    """A system's region (its fully repainted pixels) against a ground-truth edit mask (white =
    edited), in pixels at the mask's size, or on the `grid` x `grid` patch grid when given."""
    predicted, truth = inside(region, mask.size, REPAINTED), inside(mask)
    if grid is not None:
        predicted, truth = on_grid(predicted, grid), on_grid(truth, grid)
    return overlap(predicted, truth)


def region_share(region: Image.Image) -> float:
    """The share of the image a region picture repaints: its mean value / 255."""
    return float(np.asarray(region.convert("L"), dtype=np.float64).mean()) / 255


def within_tolerance(image: Image.Image, reference: Image.Image) -> np.ndarray:
    """The pixels where `image`, resized (bicubic) to `reference`'s size, differs from it by at
    most EDIT_TOLERANCE in every channel."""
    resized = to_rgb(image).resize(reference.size, Image.Resampling.BICUBIC)
    difference = np.abs(np.asarray(resized, np.int16) - np.asarray(to_rgb(reference), np.int16))
    return difference.max(axis=-1) <= EDIT_TOLERANCE * 255


def changed_region(edited: Image.Image, source: Image.Image) -> Image.Image:
    """The pixels an edit changed beyond EDIT_TOLERANCE ("L", white), at the source's size: the
    region of a system that reports none (InstructPix2Pix)."""
    changed = ~within_tolerance(edited, source)
    return Image.fromarray(changed.astype(np.uint8) * 255, "L")


def edit_success(edited: Image.Image, answer: KnownAnswer) -> float:
    """1.0 when the edit is the rendered one: the target where the edit changes pixels and the
    input beyond the ground-truth region's band (see the module's note), else 0.0.

    Inside the region only the pixels that the rendered target changes (beyond the tolerance)
    are judged: a region may hold pixels that keep their colour (the overlap of an old and a
    new shape), and a copy of the input must not pass on those. A region whose target changes
    nothing asks nothing inside."""
    truth = inside(answer.mask, answer.target.size)
    changed = truth & ~within_tolerance(answer.target, answer.source)
    band = dilate(torch.from_numpy(truth).float()[None, None], EDIT_BAND)[0, 0].numpy() > 0
    as_rendered = _share(within_tolerance(edited, answer.target), changed) >= EDIT_INSIDE_SHARE
    kept = _share(within_tolerance(edited, answer.source), ~band) >= EDIT_OUTSIDE_SHARE
    return float(as_rendered and kept)


def distractor_group(distractor: bool | None) -> str | None:
    """The DISTRACTOR_GROUPS subgroup of an edit; None where the test set does not say."""
    if distractor is None:
        return None
    return DISTRACTOR_GROUPS[0] if distractor else DISTRACTOR_GROUPS[1]


def _share(matches: np.ndarray, where: np.ndarray) -> float:
    return float(matches[where].mean()) if where.any() else 1.0


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else math.nan


class _Means(Metric):
    """Means of named per-sample values, overall and per group; a NaN value is not counted.

    `batch_values` holds the per-sample values of the latest `update` (one dict per sample, in
    input order): read it after each update to write a per-sample table. It is not a metric
    state: it is neither reset nor synced across processes.
    """

    is_differentiable = False
    full_state_update = False

    def __init__(
        self,
        models: MetricModels | None,
        names: tuple[str, ...],
        groups: Sequence[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.models, self.names, self.groups = models, names, tuple(groups)
        shape = (1 + len(self.groups), len(names))  # row 0: all samples; row 1 + g: group g
        self.add_state("sums", torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("counts", torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")
        self.batch_values: list[dict[str, float]] = []

    def _add(self, values: dict[str, Tensor], *groupings: Sequence[str | None] | None) -> None:
        """Add a batch to the overall means and to each grouping's (e.g. task, distractor): a
        grouping names one group per sample, None where the sample is in none of them."""
        table = torch.stack([values[name].to(self.sums) for name in self.names], dim=1)
        present = (~table.isnan()).to(self.sums)
        self._accumulate(table, present, [0] * len(table))
        for grouping in groupings:
            if grouping is not None:
                self._accumulate(table, present, self._rows(grouping))
        self.batch_values = [
            dict(zip(self.names, sample, strict=True)) for sample in table.tolist()
        ]

    def _rows(self, grouping: Sequence[str | None]) -> list[int | None]:
        unknown = sorted({group for group in grouping if group is not None} - set(self.groups))
        if unknown:
            raise ValueError(
                f"unknown tasks {unknown}: pass every task when the metric is made "
                f"(known: {list(self.groups)})"
            )
        return [None if group is None else 1 + self.groups.index(group) for group in grouping]

    def _accumulate(self, table: Tensor, present: Tensor, rows: list[int | None]) -> None:
        picked = [sample for sample, row in enumerate(rows) if row is not None]
        index = torch.tensor([rows[i] for i in picked], dtype=torch.long, device=self.sums.device)
        self.sums.index_add_(0, index, table[picked].nan_to_num())
        self.counts.index_add_(0, index, present[picked])

    def compute(self) -> dict[str, Tensor]:
        """The mean of each metric, as `<metric>` over all samples and `<group>/<metric>` per
        group; a metric no sample had a value for is left out."""
        means = self.sums / self.counts
        results = {}
        for g, prefix in enumerate(("", *(f"{group}/" for group in self.groups))):
            for k, name in enumerate(self.names):
                if self.counts[g, k] > 0:
                    results[prefix + name] = means[g, k]
        return results


class EmuEditMetrics(_Means):
    """Emu Edit's CLIP_dir, CLIP_out, CLIP_img, L1 and DINO, against the input image.

    For a per-task breakdown pass every task of the benchmark here (`tasks`) and each sample's
    task to `update`; `compute` then also returns `<task>/<metric>`, e.g. `add/clip_dir`.
    """

    def __init__(self, models: MetricModels, tasks: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(models, EMU_EDIT_METRICS, tasks, **kwargs)

    def update(
        self,
        edited: Sequence[Image.Image],
        inputs: Sequence[Image.Image],
        input_captions: Sequence[str],
        output_captions: Sequence[str],
        tasks: Sequence[str] | None = None,
    ) -> None:
        _check_lengths(
            edited,
            inputs=inputs,
            input_captions=input_captions,
            output_captions=output_captions,
            tasks=tasks,
        )
        if not edited:
            self.batch_values = []
            return
        models = self.models
        image_edited, image_input = models.clip_images([*edited, *inputs]).chunk(2)
        text_input, text_output = models.clip_texts([*input_captions, *output_captions]).chunk(2)
        dino_edited, dino_input = models.dino_images([*edited, *inputs]).chunk(2)
        l1 = [pixel_distances(e, i)[0] for e, i in zip(edited, inputs, strict=True)]
        values = {
            "clip_dir": clip_direction(image_edited, image_input, text_output, text_input),
            "clip_out": cosine(image_edited, text_output),
            "clip_img": cosine(image_edited, image_input),
            "l1": torch.tensor(l1, dtype=torch.float64),
            "dino": cosine(dino_edited, dino_input),
        }
        self._add(values, tasks)


class MagicBrushMetrics(_Means):
    """MagicBrush's L1, L2, CLIP-I, DINO and CLIP-T, against the ground-truth output.

    CLIP-T needs a caption of the ground truth, which the test set ships apart from the images
    (its global/local description files): give one per sample, or None where there is none.
    CLIP-T is averaged over the samples that had a caption only, and left out of `compute`
    when none had one.
    """

    def __init__(self, models: MetricModels, **kwargs: Any) -> None:
        super().__init__(models, MAGICBRUSH_METRICS, (), **kwargs)

    def update(
        self,
        generated: Sequence[Image.Image],
        targets: Sequence[Image.Image],
        captions: Sequence[str | None] | None = None,
    ) -> None:
        captions = [None] * len(generated) if captions is None else captions
        _check_lengths(generated, targets=targets, captions=captions)
        if not generated:
            self.batch_values = []
            return
        image_generated, image_target = self.models.clip_images([*generated, *targets]).chunk(2)
        dino_generated, dino_target = self.models.dino_images([*generated, *targets]).chunk(2)
        distances = torch.tensor(
            [pixel_distances(g, t) for g, t in zip(generated, targets, strict=True)],
            dtype=torch.float64,
        )
        clip_t = torch.full_like(image_generated[:, 0], torch.nan)
        captioned = [i for i, caption in enumerate(captions) if caption is not None]
        if captioned:
            texts = self.models.clip_texts([captions[i] for i in captioned])
            clip_t[captioned] = cosine(image_generated[captioned], texts)
        values = {
            "l1": distances[:, 0],
            "l2": distances[:, 1],
            "clip_i": cosine(image_generated, image_target),
            "dino": cosine(dino_generated, dino_target),
            "clip_t": clip_t,
        }
        self._add(values, None)


class RegionMetrics(_Means):
    """The region a system repainted, and where the test set knows the answer how right the
    edit was (the module's note): region_fraction, empty_region, region_iou / _precision /
    _recall in pixels and on the head's patch grid (`grid` cells a side; None leaves those
    out), and edit_success.

    Besides the overall means, `compute` returns `<task>/<metric>` for the tasks passed here
    and `distractor/<metric>` and `no distractor/<metric>` where samples say whether a similar
    object stood beside the edited one.
    """

    def __init__(self, tasks: Sequence[str] = (), grid: int | None = None, **kwargs: Any) -> None:
        super().__init__(None, REGION_METRICS, (*tasks, *DISTRACTOR_GROUPS), **kwargs)
        self.grid = grid

    def update(
        self,
        edited: Sequence[Image.Image],
        regions: Sequence[Image.Image],
        answers: Sequence[KnownAnswer | None] | None = None,
        tasks: Sequence[str] | None = None,
        distractors: Sequence[bool | None] | None = None,
    ) -> None:
        """`regions`: what each edit repainted ("L", >= 128 inside); `answers`: each edit's
        known answer, None where the test set has none (its known-answer metrics are left
        out)."""
        answers = [None] * len(regions) if answers is None else answers
        _check_lengths(
            regions, edited=edited, answers=answers, tasks=tasks, distractors=distractors
        )
        if not regions:
            self.batch_values = []
            return
        samples = [self._values(e, r, a) for e, r, a in zip(edited, regions, answers, strict=True)]
        values = {
            name: torch.tensor([sample[name] for sample in samples], dtype=torch.float64)
            for name in self.names
        }
        subgroups = None if distractors is None else [distractor_group(d) for d in distractors]
        self._add(values, tasks, subgroups)

    def _values(
        self, edited: Image.Image, region: Image.Image, answer: KnownAnswer | None
    ) -> dict[str, float]:
        fraction = region_share(region)
        values = {"region_fraction": fraction, "empty_region": float(fraction == 0)}
        if answer is None:
            return values | dict.fromkeys(KNOWN_ANSWER_METRICS, math.nan)
        pixels = region_overlap(region, answer.mask)
        cells = (
            [math.nan] * 3 if self.grid is None else region_overlap(region, answer.mask, self.grid)
        )
        return (
            values
            | dict(zip(OVERLAP_METRICS, pixels, strict=True))
            | dict(zip(GRID_METRICS, cells, strict=True))
            | {"edit_success": edit_success(edited, answer)}
        )


def _check_lengths(first: Sequence[Any], **others: Sequence[Any] | None) -> None:
    wrong = {name: len(v) for name, v in others.items() if v is not None and len(v) != len(first)}
    if wrong:
        raise ValueError(f"one value per image ({len(first)} images); got lengths {wrong}")
