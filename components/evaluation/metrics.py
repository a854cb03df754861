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
Ours, beside them (no published system reports these): the region each edit repainted.
  region_fraction = share of the image's pixels repainted (the feathered mask, in [0, 1]);
  empty_region = 1 where nothing was repainted, so its mean is the share of empty masks;
  region_iou = |R ∩ M| / |R ∪ M| of our region R (mask >= 128) and MagicBrush's mask M of the
  turn (white = the region the annotator edited, per the dataset card), R resized to M's size.
Before L1 and L2 the edited image is resized (bicubic) to the size of the image it is compared
with. CLIP embeddings are unit length before any difference is taken; DINO's is the CLS token
of the last hidden state. The metric models (CLIP ViT-B/32 and DINO ViT-S/16 in MagicBrush's
evaluation) are loaded by the caller and passed in as `MetricModels`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torchmetrics import Metric
from torchvision import transforms
from transformers import ViTModel

from components.data.images import to_rgb
from components.models.loading import freeze, load_clip, load_dino

EMU_EDIT_METRICS = ("clip_dir", "clip_out", "clip_img", "l1", "dino")
MAGICBRUSH_METRICS = ("l1", "l2", "clip_i", "dino", "clip_t")
REGION_METRICS = ("region_fraction", "empty_region", "region_iou")
REGION_THRESHOLD = 128  # a pixel of a region or mask picture (mode "L") is inside from here on
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


def region_iou(region: Image.Image, mask: Image.Image) -> float:
    """IoU of a predicted region and a ground-truth edit mask (white = edited), at the mask's
    size; 1.0 when both are empty."""
    inside = np.asarray(region.convert("L").resize(mask.size, Image.Resampling.NEAREST))
    predicted = inside >= REGION_THRESHOLD
    truth = np.asarray(mask.convert("L")) >= REGION_THRESHOLD
    union = np.logical_or(predicted, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(predicted, truth).sum() / union)


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

    def _add(self, values: dict[str, Tensor], groups: Sequence[str] | None) -> None:
        table = torch.stack([values[name].to(self.sums) for name in self.names], dim=1)
        present = (~table.isnan()).to(self.sums)
        rows = [torch.zeros(len(table), dtype=torch.long, device=self.sums.device)]
        if groups is not None:
            unknown = sorted(set(groups) - set(self.groups))
            if unknown:
                raise ValueError(
                    f"unknown tasks {unknown}: pass every task when the metric is made "
                    f"(known: {list(self.groups)})"
                )
            rows.append(
                torch.tensor([1 + self.groups.index(g) for g in groups], device=rows[0].device)
            )
        for row in rows:
            self.sums.index_add_(0, row, table.nan_to_num())
            self.counts.index_add_(0, row, present)
        self.batch_values = [
            dict(zip(self.names, sample, strict=True)) for sample in table.tolist()
        ]

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
    """The region a system repainted: its mean share of the image, the share of edits that
    repainted nothing, and (where the benchmark has one) its IoU with the ground-truth mask.

    `regions` are the feathered masks ("L", 0 = kept); `fractions` their mean value / 255 as the
    edit recorded it. A system without a region (the baseline) is not scored here.
    """

    def __init__(self, tasks: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(None, REGION_METRICS, tasks, **kwargs)

    def update(
        self,
        regions: Sequence[Image.Image],
        fractions: Sequence[float],
        masks: Sequence[Image.Image | None] | None = None,
        tasks: Sequence[str] | None = None,
    ) -> None:
        masks = [None] * len(regions) if masks is None else masks
        _check_lengths(regions, fractions=fractions, masks=masks, tasks=tasks)
        if not regions:
            self.batch_values = []
            return
        iou = [
            math.nan if mask is None else region_iou(region, mask)
            for region, mask in zip(regions, masks, strict=True)
        ]
        fraction = torch.tensor(fractions, dtype=torch.float64)
        values = {
            "region_fraction": fraction,
            "empty_region": (fraction == 0).to(torch.float64),
            "region_iou": torch.tensor(iou, dtype=torch.float64),
        }
        self._add(values, tasks)


def _check_lengths(first: Sequence[Any], **others: Sequence[Any] | None) -> None:
    wrong = {name: len(v) for name, v in others.items() if v is not None and len(v) != len(first)}
    if wrong:
        raise ValueError(f"one value per image ({len(first)} images); got lengths {wrong}")
