"""`Describer`: t_o from an image, (t_ins, t_e) from t_o, t_e from (t_o, t_ins), checked.

Every answer goes through the strict checks; a bad one is asked again with a new seed (and
sampling) up to describe.max_attempts, then reported as a rejection, never raised mid-batch.
The inference helpers `describe_image` and `target_description` raise DescribeError instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from PIL import Image

from components.config import DescribeConfig, Params, load_params
from components.data.images import to_rgb
from components.describe.backends import build_backend
from components.describe.checking import (
    Answer,
    Bounds,
    Edit,
    Rejection,
    check_caption,
    check_edit,
    check_target,
    clean,
)
from components.describe.errors import DescribeError
from components.describe.interface import Backend, Decoding

T = TypeVar("T")
R = TypeVar("R")
# the settings that change what is written (not how fast): part of every cache key
OUTPUT_SETTINGS = {
    "recaption",
    "max_attempts",
    "batch_size",
    "max_new_tokens",
    "sampling",
    "temperature",
    "min_chars",
    "max_chars",
}


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """One sample's result: a checked value, or the last rejection after `attempts` answers."""

    value: T | None
    attempts: int
    rejection: Rejection | None = None
    answer: str = ""  # the last raw answer of a rejected sample, for the rejections file


class Describer:
    """The describe backends behind one interface, for the flow and for `Editor.edit`."""

    def __init__(self, backend: Backend, cfg: DescribeConfig, seed: int = 0) -> None:
        if cfg.recaption and backend.captioner is None:
            raise DescribeError(
                f"describe.recaption needs a captioning model, and the {backend.name} backend "
                "has none: set describe.backend to transformers or vllm, or recaption: false"
            )
        self.backend, self.cfg, self.seed = backend, cfg, seed
        self.bounds = Bounds(cfg.min_chars, cfg.max_chars)

    @classmethod
    def from_params(cls, params: Params | str | Path = "params.yaml") -> Describer:
        """The backend `describe.backend` names, with the models `models.writer/captioner`."""
        if not isinstance(params, Params):
            params = load_params(params)
        return cls(build_backend(params.describe, params.models), params.describe, params.seed)

    @classmethod
    def captioning(cls, params: Params) -> Describer:
        """A describer whose captions come from `models.captioner` on the transformers backend:
        how inference writes t_o = MLLM(X) (paper §3.1) when `describe.backend` cannot caption.
        Nothing loads until the first caption; a missing local model folder fails here."""
        cfg = params.describe.model_copy(update={"backend": "transformers", "recaption": False})
        return cls(build_backend(cfg, params.models), cfg, params.seed)

    @property
    def writer(self) -> str:
        """Who writes t_ins and t_e, in words, for messages and records."""
        if self.backend.prompts is None:  # the template: rules, no model
            return f"{self.backend.name} writer {self.backend.model}"
        return f"writer {self.backend.model} on the {self.backend.name} backend"

    @property
    def captioner(self) -> str:
        """Who writes t_o, in words, for messages and records."""
        if self.backend.captioner is None:
            return f"no captioner (the {self.backend.name} backend)"
        return f"captioner {self.backend.captioner} on the {self.backend.name} backend"

    @property
    def can_caption(self) -> bool:
        return self.backend.captioner is not None

    def identity(self) -> dict[str, object]:
        """Everything that decides what this describer writes."""
        prompts = self.backend.prompts
        return {
            "backend": self.backend.name,
            "model": self.backend.model,
            "captioner": self.backend.captioner,
            "prompt_version": prompts.version if prompts else None,
            "prompts": prompts.digest if prompts else None,
            "seed": self.seed,
            **self.cfg.model_dump(include=OUTPUT_SETTINGS),
        }

    def captions(self, images: Sequence[Image.Image]) -> list[Outcome[str]]:
        """t_o for each image, by the captioning MLLM."""
        return self._answers(
            images, self.backend.caption, lambda _, a: check_caption(a, self.bounds), "caption"
        )

    def edits(self, captions: Sequence[str]) -> list[Outcome[Edit]]:
        """(t_ins, t_e) for each t_o: the training data of the paper (§3.1)."""

        def check(t_o: str, answer: Answer) -> Edit | Rejection:
            return check_edit(t_o, answer, self.bounds)

        return self._answers(captions, self.backend.write_edits, check, "edit")

    def targets(self, pairs: Sequence[tuple[str, str]]) -> list[Outcome[str]]:
        """t_e for each (t_o, t_ins): what the edited image will show (inference, §4)."""

        def ask(items: list[tuple[str, str]], decoding: Decoding) -> list[Answer]:
            captions, instructions = zip(*items, strict=True)
            return self.backend.write_targets(list(captions), list(instructions), decoding)

        return self._answers(
            pairs, ask, lambda pair, a: check_target(pair[0], a, self.bounds), "target"
        )

    def describe_image(self, image: Image.Image) -> str:
        """t_o for one image; DescribeError if every answer was rejected."""
        return _value(self.captions([to_rgb(image)])[0], "describe the image")

    def target_description(self, t_o: str, t_ins: str) -> str:
        """t_e for one (t_o, t_ins); DescribeError if every answer was rejected."""
        outcome = self.targets([(clean(t_o), clean(t_ins))])[0]
        return _value(outcome, f"write the target description for the instruction {t_ins!r}")

    def _answers(
        self,
        items: Sequence[T],
        ask: Callable[[list[T], Decoding], list[Answer]],
        check: Callable[[T, Answer], R | Rejection],
        stage: str,
    ) -> list[Outcome[R]]:
        """Ask for all items, check, and ask again for the rejected ones only."""
        outcomes: list[Outcome[R]] = [Outcome(None, 0)] * len(items)
        pending = list(range(len(items)))
        for attempt in range(1, self.cfg.max_attempts + 1):
            if not pending:
                break
            answers = ask([items[i] for i in pending], self._decoding(stage, attempt))
            retry = []
            for i, answer in zip(pending, answers, strict=True):
                result = check(items[i], answer)
                if isinstance(result, Rejection):
                    raw = answer if isinstance(answer, str) else ""
                    outcomes[i] = Outcome(None, attempt, result, raw)
                    retry.append(i)
                else:
                    outcomes[i] = Outcome(result, attempt)
            pending = retry
        return outcomes

    def _decoding(self, stage: str, attempt: int) -> Decoding:
        """Attempt 1 decodes as describe.sampling says; every retry samples with a new seed."""
        digest = hashlib.sha256(f"{self.seed}:{stage}:{attempt}".encode()).digest()
        return Decoding(
            sample=attempt > 1 or self.cfg.sampling == "sample",
            seed=int.from_bytes(digest[:4], "big"),
            temperature=self.cfg.temperature,
            max_new_tokens=self.cfg.max_new_tokens,
        )


def _value(outcome: Outcome[T], what: str) -> T:
    if outcome.rejection is not None:
        raise DescribeError(
            f"could not {what}: {outcome.attempts} answer(s), the last rejected as "
            f"{outcome.rejection.reason} ({outcome.rejection.detail})"
        )
    return outcome.value
