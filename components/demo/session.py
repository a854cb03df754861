"""What the page does, without the page: read an upload, draw a world scene, run an edit with
one head or every scale's, and say what went wrong in words. The Gradio app only wires these."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.exceptions import MlflowException
from PIL import Image, UnidentifiedImageError
from safetensors import SafetensorError

from components.config import Params
from components.demo.heads import UNTRAINED, Head, find_heads, tracking_uri
from components.demo.pictures import heat_map
from components.demo.world import Verdict, WorldScene, verdict, world_scene
from components.editing import Editor, EditResult
from components.errors import InputError
from components.models.loading import ModelLoadError

ALL_SCALES = "all scales"
log = logging.getLogger(__name__)


class DemoInputError(InputError):
    """Input the page cannot edit; the message names it and says what to do."""


@dataclass(frozen=True)
class Source:
    """The picture to edit and where it came from."""

    image: Image.Image
    name: str  # in words: "upload cat.png", "world scene 7"
    scene: WorldScene | None = None


@dataclass(frozen=True)
class Settings:
    """The advanced controls; the page starts them at the profile's values."""

    steps: int
    guidance_scale: float
    tau: float
    seed: int = 0  # `regionedit edit`'s default


@dataclass(frozen=True)
class HeadEdit:
    """One head's edit of the source, with what the page shows of it."""

    head: Head
    result: EditResult
    seconds: float
    heat_map: Image.Image
    verdict: Verdict | None


@dataclass
class DemoSession:
    """The editor and heads one `regionedit demo` serves (shared by every browser tab)."""

    params: Params
    editor: Editor  # the untrained head's: its frozen models are every head's
    heads: list[Head]  # trained heads, smallest scale first; extra checkpoints after them
    tracking_uri: str
    _editors: dict[str, Editor] = field(default_factory=dict)

    @classmethod
    def start(
        cls, params: Params, local: dict[str, Path | None], checkpoint: Path | None = None
    ) -> DemoSession:
        """Load the editor of `params` (ModelLoadError names a missing model folder) and find
        the trained heads: `local` checkpoints by scale, the registry's aliases, `checkpoint`."""
        uri = tracking_uri(params)
        heads = find_heads(params, local, uri)
        if checkpoint is not None:
            heads.append(Head("", str(checkpoint), path=checkpoint))
        return cls(params, Editor.from_params(params), heads, uri)

    @property
    def choices(self) -> list[str]:
        """The model dropdown: each head, then "all scales" once two scales have heads."""
        labels = [head.label for head in self.heads] or [UNTRAINED.label]
        return labels + ([ALL_SCALES] if len(self.scale_heads) > 1 else [])

    @property
    def default_choice(self) -> str:
        """The largest trained scale, the head `regionedit edit` uses without --checkpoint."""
        scales = self.scale_heads
        return scales[-1].label if scales else self.choices[0]

    @property
    def scale_heads(self) -> list[Head]:
        return [head for head in self.heads if head.scale]

    def default_settings(self) -> Settings:
        cfg = self.params.method
        return Settings(cfg.steps, cfg.guidance_scale, cfg.tau)

    def load_upload(self, path: str | Path | None) -> Source:
        """An uploaded file as the source, or a DemoInputError saying why it cannot be."""
        if path is None:
            raise DemoInputError("no image: upload a photo or press “a world scene”")
        name = Path(path).name
        try:
            image = Image.open(path)
            image.load()
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
            raise DemoInputError(
                f"upload {name}: cannot read it as an image ({err}); upload a PNG, JPEG or WebP"
            ) from None
        limit = self.params.method.max_pixels
        if image.width * image.height > limit:
            raise DemoInputError(
                f"upload {name}: image is {image.width}x{image.height} = "
                f"{image.width * image.height} pixels, more than method.max_pixels {limit}: "
                "downscale it first"
            )
        return Source(image.convert("RGB"), f"upload {name}")

    def draw_scene(self, rng: random.Random) -> Source:
        """A random session of the world test set, as `regionedit world` writes it."""
        world = self.params.world
        scene = world_scene(world.test_seed, world.test_count, world.side, rng.randrange(1 << 30))
        return Source(scene.image, f"world scene {scene.index}", scene)

    def edit(
        self,
        source: Source | None,
        instruction: str,
        choice: str,
        original_description: str | None,
        settings: Settings,
        progress: Callable[[float, str], None] = lambda share, what: None,
    ) -> list[HeadEdit]:
        """The edit with the chosen head, or with each scale's head for "all scales"."""
        if source is None:
            raise DemoInputError("no image: upload a photo or press “a world scene” first")
        if not instruction or not instruction.strip():
            raise DemoInputError(
                "instruction must be a non-empty string, got an empty box: "
                'type what to change, e.g. "make the red circle blue"'
            )
        heads = self.scale_heads if choice == ALL_SCALES else [self._head(choice)]
        t_o = (original_description or "").strip() or None
        edits = []
        for done, head in enumerate(heads):
            progress(done / len(heads), f"{head.label}: editing")
            edits.append(self._edit_with(head, source, instruction, t_o, settings))
        progress(1.0, "done")
        return edits

    def _head(self, choice: str) -> Head:
        heads = {head.label: head for head in self.heads} or {UNTRAINED.label: UNTRAINED}
        if choice not in heads:
            raise DemoInputError(f"model {choice!r} is not one of {sorted(heads)}: choose another")
        return heads[choice]

    def _edit_with(
        self, head: Head, source: Source, instruction: str, t_o: str | None, settings: Settings
    ) -> HeadEdit:
        editor = self._editor(head).with_settings(
            steps=settings.steps, guidance_scale=settings.guidance_scale, tau=settings.tau
        )
        started = time.perf_counter()
        result = editor.edit(source.image, instruction, t_o, seed=settings.seed)
        seconds = time.perf_counter() - started
        known = source.scene.known_edit(instruction) if source.scene else None
        judged = None if known is None else verdict(source.scene, known, result.image, result.mask)
        truth = None if judged is None else judged.truth
        picture = heat_map(source.image, result.probability, settings.tau, truth)
        return HeadEdit(head, result, seconds, picture, judged)

    def _editor(self, head: Head) -> Editor:
        """The head's editor over the shared frozen models, loaded on first use."""
        if head.label not in self._editors:
            try:
                weights = head.weights(self.tracking_uri)
                editor = self.editor if weights is None else self.editor.with_head(weights)
            except (OSError, RuntimeError, SafetensorError, MlflowException) as err:
                raise ModelLoadError(
                    f"head {head.label}: cannot load it ({err}); retrain that scale or choose "
                    "another"
                ) from None
            self._editors[head.label] = editor
        return self._editors[head.label]


def describe_failure(err: Exception) -> str:
    """The page's words for a failed edit: the Editor's own message for bad input (the same as
    `regionedit edit` prints), a short line (and the log's traceback) for anything else."""
    if isinstance(err, DemoInputError | ValueError | ModelLoadError):
        return f"error: {err}"
    log.exception("edit failed")
    return f"error: the edit failed ({type(err).__name__}: {err}); the server's log has the details"
