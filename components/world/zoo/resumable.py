"""Training that survives a kill: one file holds everything a world model's loop needs to go on
exactly where it stopped (the modules, the optimiser and its schedule, every random stream,
the step, the wall time spent, and the check curve so far).

A loop asks `restore()` once for the step to start from, and calls `tick(step)` after each
step; the state is written every `every_s` seconds and after the last step, to a temporary
file first so that a kill while writing leaves the previous state whole.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from components.errors import InputError


class ResumeError(InputError, RuntimeError):
    """A saved training state that does not belong to this run."""


def refuse_to_start_over(states: Path, resume: bool) -> None:
    """A release training that does not resume must not start over the states another left in
    `states`: ResumeError says to resume or to delete them."""
    if not resume and states.is_dir() and any(states.iterdir()):
        raise ResumeError(
            f"{states} holds a release training in progress; pass --resume to go on "
            "with it, or delete the folder to start again"
        )


@dataclass(frozen=True)
class RunSettings:
    """Where and how often a world model's training saves its state, and its check curve."""

    work: Path | None = None  # folder of the saved states; None: the run is not resumable
    every_s: float = 300.0
    curve_points: int = 0  # how many times the model's check is measured along its training
    progress: bool = True

    def state(
        self,
        name: str,
        settings: dict[str, Any],
        modules: dict[str, Any],
        generators: dict[str, torch.Generator],
        rngs: dict[str, random.Random],
    ) -> TrainingState:
        """The state of the loop `name`, trained with `settings` (its fingerprint)."""
        path = None if self.work is None else self.work / f"{name}.pt"
        return TrainingState(path, fingerprint(settings), modules, generators, rngs, self.every_s)

    def steps(self, desc: str, start: int, total: int) -> Iterable[int]:
        """Steps `start` .. `total` - 1, with a progress bar that counts the steps done before."""
        return tqdm(
            range(start, total),
            desc=desc,
            unit="step",
            disable=not self.progress,
            mininterval=10,
            initial=start,
            total=total,
        )

    def on_curve(self, step: int, steps: int) -> bool:
        """Whether the check is measured after `step` of `steps` (evenly, and at the end)."""
        if not self.curve_points:
            return False
        return step % max(steps // self.curve_points, 1) == 0 or step == steps


ONE_PROCESS = RunSettings()  # not resumable, no curve: the quick zoo of the tests' pipeline


def fingerprint(settings: dict[str, Any]) -> str:
    """A short digest of what a run was started with (dataclasses by their fields)."""
    text = json.dumps(settings, sort_keys=True, default=dataclasses.asdict)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class TrainingState:
    """The resumable state of one training loop, kept in `path` (None: never written)."""

    path: Path | None
    fingerprint: str  # what the run was started with: a state of another budget is refused
    modules: dict[str, Any]  # name -> anything with state_dict / load_state_dict
    generators: dict[str, torch.Generator] = field(default_factory=dict)
    rngs: dict[str, random.Random] = field(default_factory=dict)
    every_s: float = 300.0
    curve: list[dict[str, float]] = field(default_factory=list)
    wall_s: float = 0.0  # training time before this process, from the saved state
    _started: float | None = field(default_factory=time.monotonic)
    _last_save: float = field(default_factory=time.monotonic)

    def restore(self) -> int:
        """Load the saved state if there is one; the step the loop starts from."""
        if self.path is None or not self.path.is_file():
            return 0
        saved = torch.load(self.path, weights_only=False)
        if saved["fingerprint"] != self.fingerprint:
            raise ResumeError(
                f"{self.path}: saved by a run with other settings ({saved['fingerprint']}, this "
                f"run: {self.fingerprint}); delete the work folder to start again"
            )
        for name, module in self.modules.items():
            module.load_state_dict(saved["modules"][name])
        for name, generator in self.generators.items():
            generator.set_state(saved["generators"][name])
        for name, rng in self.rngs.items():
            rng.setstate(saved["rngs"][name])
        torch.set_rng_state(saved["torch"])
        self.curve, self.wall_s = saved["curve"], saved["wall_s"]
        self._started = time.monotonic()
        return saved["step"]

    def elapsed(self) -> float:
        """Seconds of training so far, over every process that worked on this loop."""
        if self._started is None:
            return self.wall_s
        return self.wall_s + time.monotonic() - self._started

    def stop(self) -> TrainingState:
        """The loop is over: its wall time stops counting."""
        self.wall_s, self._started = self.elapsed(), None
        return self

    def tick(self, step: int, last: bool = False) -> None:
        """After `step` steps: write the state if it is due, or if this was the last step."""
        if self.path is not None and (last or time.monotonic() - self._last_save >= self.every_s):
            self.save(step)

    def save(self, step: int) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "fingerprint": self.fingerprint,
            "step": step,
            "modules": {name: module.state_dict() for name, module in self.modules.items()},
            "generators": {name: g.get_state() for name, g in self.generators.items()},
            "rngs": {name: rng.getstate() for name, rng in self.rngs.items()},
            "torch": torch.get_rng_state(),
            "curve": self.curve,
            "wall_s": self.elapsed(),
        }
        partial = self.path.with_suffix(".partial")
        torch.save(state, partial)
        partial.replace(self.path)
        self._last_save = time.monotonic()
