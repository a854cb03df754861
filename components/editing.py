"""The public editing API: `Editor.from_params(...).edit(image, instruction, ...)`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from components.config import Params, load_params
from components.data.images import to_rgb
from components.describe.describer import Describer
from components.describe.errors import DescribeError
from components.method.build import build_region_edit_model
from components.method.mask import feather, to_grid, upsample
from components.method.model import RegionEditModel, Stage, untimed
from components.pictures import overlay_region

MIN_SIDE = 16  # pixels; smaller images carry no region worth predicting
FALLBACK_CAPTION = "a photo"  # t_o when the captioner gives no usable caption (as evaluation)
REGION_THRESHOLD = 128  # a pixel of a region picture (mode "L") is inside from here on


class Descriptions(NamedTuple):
    """t_o and t_e of one edit, and who wrote each, in words (EditResult's field order)."""

    original: str  # t_o
    target: str  # t_e
    original_source: str  # "given", "captioner <model> …" or "fallback …"
    target_source: str


@dataclass
class EditResult:
    image: Image.Image  # RGB, the input's size; source pixels wherever `mask` is 0
    mask: Image.Image  # "L", the input's size: the feathered region that was repainted
    original_description: str  # t_o
    target_description: str  # t_e
    original_source: str  # who wrote t_o, in words ("given", "captioner <model> …", "fallback …")
    target_source: str  # who wrote t_e, in words
    probability: Image.Image | None = None  # "L", the input's size: P_region per patch (None
    # when a region was given); the hard region is where it exceeds method.tau

    def save(self, out: Path, source: Image.Image, region: Path | None = None) -> Path:
        """The edited image to `out` and the region tinted over `source` to `region` (default:
        `out` with -region before its suffix); return where the region went."""
        region = region or out.with_name(f"{out.stem}-region{out.suffix or '.png'}")
        out.parent.mkdir(parents=True, exist_ok=True)
        self.image.save(out)
        overlay_region(source.convert("RGB"), self.mask).save(region)
        return region

    def lines(self, out: Path, region: Path) -> list[str]:
        """What `regionedit edit` prints: t_o and t_e with who wrote each, where the edit and
        its region went, and a hint when a description fell back."""
        lines = [
            f"t_o: {self.original_description!r} ({self.original_source})",
            f"t_e: {self.target_description!r} ({self.target_source})",
            f"edited: {out} · region: {region}",
        ]
        if any(s.startswith("fallback") for s in (self.original_source, self.target_source)):
            lines.append("hint: --original-description and --target-description set t_o and t_e")
        return lines


class Editor:
    """Instruction-driven editing with a trained (or fresh) region head."""

    def __init__(
        self, model: RegionEditModel, describer: Describer, captioner: Describer | None = None
    ) -> None:
        """`describer` writes t_e; `captioner` writes t_o (default: `describer`, if it can)."""
        self.model = model.eval()
        self.cfg = model.cfg
        self.describer = describer
        self.captioner = captioner or describer

    @classmethod
    def from_params(
        cls, params: str | Path | Params = "params.yaml", checkpoint: str | Path | None = None
    ) -> Editor:
        """Load every model named in params; `checkpoint` is a safetensors file of head weights
        (None: a freshly initialised head, which only makes sense for smoke runs)."""
        if not isinstance(params, Params):
            params = load_params(params)
        with torch.random.fork_rng():  # an untrained head is the same seeded one every time
            torch.manual_seed(params.seed)
            model = build_region_edit_model(params.models, params.method)
        describer = Describer.from_params(params)
        captioner = describer if describer.can_caption else Describer.captioning(params)
        editor = cls(model, describer, captioner)
        return editor if checkpoint is None else editor.with_head(checkpoint)

    def with_settings(self, **method: object) -> Editor:
        """This editor with some `method` settings changed for inference (e.g. steps,
        guidance_scale, tau): the same models and head, validated as params.yaml is."""
        editor = Editor(self.model, self.describer, self.captioner)
        editor.cfg = type(self.cfg).model_validate(self.cfg.model_dump() | method)
        return editor

    def with_head(self, checkpoint: str | Path) -> Editor:
        """This editor's frozen models and describers under the head weights in `checkpoint`:
        a trained and the untrained head side by side hold one copy of the frozen models."""
        with torch.random.fork_rng():  # the head drawn here is overwritten: keep the caller's RNG
            model = RegionEditModel(self.model.encoders, self.model.generator, self.cfg)
        model.head.load_state_dict(load_file(str(checkpoint)))
        return Editor(model, self.describer, self.captioner)

    @torch.no_grad()
    def edit(
        self,
        image: Image.Image,
        instruction: str,
        original_description: str | None = None,
        target_description: str | None = None,
        seed: int = 0,
        stage: Stage = untimed,
        region: Image.Image | None = None,
    ) -> EditResult:
        """Edit `image` as `instruction` says.

        The descriptions are written as `describe` says. Non-RGB images are converted as
        `prepare` converts them (transparency on white); the model works at
        `method.resolution` and the result is resized back, with the source pasted back
        outside the feathered mask. `region` ("L", the image's size, white = edit) replaces the
        head's region: it is the inpainting mask (resized to the resolution, nearest) and the
        paste-back region, so a given region and a predicted one differ in nothing else.
        `stage(name)` wraps each component for benchmarks.
        """
        instruction = _required_text(instruction, "instruction")
        source = self._check_image(image)
        given = None if region is None else _given_region(region, source.size)
        descriptions = self.describe(source, instruction, original_description, target_description)
        t_o, t_e = descriptions.original, descriptions.target
        side, cfg, generator = self.cfg.resolution, self.cfg, self.model.generator
        resized = np.array(source.resize((side, side), Image.Resampling.BICUBIC))
        x = torch.from_numpy(resized).permute(2, 0, 1)[None].float().div(255)
        x = x.to(generator.device)
        with stage("encoders"):
            features = self.model.frozen_features(x, [t_o], [instruction], [t_e], side)
        probability = None
        if given is None:
            with stage("head"):
                head = self.model.head(features.f_img, features.f_ins, features.ins_padding)
                mask = to_grid((head.p_region > cfg.tau).float())
            probability = _probability_picture(to_grid(head.p_region).cpu(), source.size)
        else:
            mask = given.to(generator.device)
        if not mask.any():
            empty = Image.new("L", source.size, 0)
            return EditResult(source.copy(), empty, *descriptions, probability)
        with stage("generation"):
            z = generator.generate(
                x * 2 - 1,
                upsample(mask, (side, side)),
                features.conditioning,
                torch.Generator(generator.device).manual_seed(seed),
                steps=cfg.steps,
                guidance_scale=cfg.guidance_scale,
                blend=True,
                masked_image_latents=cfg.masked_image_latents,
                z_src=features.z_src,
            )
            edited = ((generator.decode(z) + 1) * 127.5).round().byte()
        with stage("paste_back"):
            edited = Image.fromarray(edited[0].permute(1, 2, 0).cpu().numpy())
            edited = edited.resize(source.size, Image.Resampling.BICUBIC)
            result = self._paste_back(source, edited, mask.cpu(), descriptions)
            result.probability = probability
            return result

    def describe(
        self,
        image: Image.Image,
        instruction: str,
        original_description: str | None = None,
        target_description: str | None = None,
    ) -> Descriptions:
        """t_o and t_e as at inference in the paper (§3.1), each given or written.

        t_o (what the image shows) is written by the captioning MLLM, `models.captioner`
        (through the transformers backend when `describe.backend` is the offline template,
        which cannot look at an image), and t_e (the image after the edit) from t_o and the
        instruction by the `describe.backend` writer (the template writes it for add / remove /
        replace / recolour). A caption or target that fails the describe checks falls back, as
        in evaluation, to FALLBACK_CAPTION for t_o and to the instruction itself for t_e; the
        result says who wrote each.
        """
        instruction = _required_text(instruction, "instruction")
        t_o = _optional_text(original_description, "original_description")
        t_e = _optional_text(target_description, "target_description")
        t_o, t_o_source = (t_o, "given") if t_o else self._caption(to_rgb(image))
        t_e, t_e_source = (t_e, "given") if t_e else self._target(t_o, instruction)
        return Descriptions(t_o, t_e, t_o_source, t_e_source)

    def _caption(self, image: Image.Image) -> tuple[str, str]:
        """t_o = MLLM(X) and who wrote it; the fallback caption if every answer was rejected."""
        try:
            return self.captioner.describe_image(image), self.captioner.captioner
        except DescribeError as err:
            return FALLBACK_CAPTION, f"fallback: {self.captioner.captioner} {err}"

    def _target(self, t_o: str, instruction: str) -> tuple[str, str]:
        """t_e = LLM(t_o, t_ins) and who wrote it; the instruction itself if that fails."""
        try:
            return self.describer.target_description(t_o, instruction), self.describer.writer
        except DescribeError as err:
            return instruction, f"fallback: {self.describer.writer} {err}"

    def _paste_back(
        self,
        source: Image.Image,
        edited: Image.Image,
        mask: torch.Tensor,
        descriptions: Descriptions,
    ) -> EditResult:
        """Keep the source exactly outside the feathered mask (no VAE round-trip error there);
        `mask` is the hard region on the patch grid or in pixels, (1, 1, h, w)."""
        height, width = source.height, source.width
        alpha = feather(upsample(mask, (height, width)), self.cfg.feather)[0, 0].numpy()[..., None]
        src = np.asarray(source, dtype=np.float32)
        blended = np.rint(alpha * np.asarray(edited, dtype=np.float32) + (1 - alpha) * src)
        out = np.where(alpha > 0, blended, src).astype(np.uint8)
        repainted = Image.fromarray(np.rint(alpha[..., 0] * 255).astype(np.uint8), "L")
        return EditResult(Image.fromarray(out, "RGB"), repainted, *descriptions)

    def _check_image(self, image: Image.Image) -> Image.Image:
        if not isinstance(image, Image.Image):
            raise TypeError(f"image must be a PIL.Image.Image, got {type(image).__name__}")
        width, height = image.size
        if min(width, height) < MIN_SIDE:
            raise ValueError(
                f"image is {width}x{height}: both sides must be at least {MIN_SIDE} pixels"
            )
        if width * height > self.cfg.max_pixels:
            raise ValueError(
                f"image is {width}x{height} = {width * height} pixels, more than "
                f"method.max_pixels {self.cfg.max_pixels}: downscale it first"
            )
        return to_rgb(image.copy())


def _probability_picture(p_region: torch.Tensor, size: tuple[int, int]) -> Image.Image:
    """P_region on the patch grid (1, 1, g, g) as an "L" picture of `size` (each cell its patch)."""
    pixels = upsample(p_region.float(), (size[1], size[0]))[0, 0].clamp(0, 1).mul(255).round()
    return Image.fromarray(pixels.byte().numpy(), "L")


def _given_region(region: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """A region picture as the hard mask (1, 1, H, W) in pixels: 1 where it is white."""
    if not isinstance(region, Image.Image) or region.size != size:
        got = region.size if isinstance(region, Image.Image) else type(region).__name__
        raise ValueError(
            f"region must be a picture of the image's size {size} (mode L, white = edit), "
            f"got {got}: resize it to the image first"
        )
    inside = np.asarray(region.convert("L")) >= REGION_THRESHOLD
    return torch.from_numpy(inside).float()[None, None]


def _required_text(text: str | None, name: str) -> str:
    if text is None or not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} must be a non-empty string, got {text!r}")
    return " ".join(text.split())


def _optional_text(text: str | None, name: str) -> str | None:
    """None stays None (to be written by the describer); anything else must be real text."""
    return None if text is None else _required_text(text, name)
