"""Per-component measurements for the benchmarks, all driven by the `stage(name)` hook that
RegionEditModel.forward and Editor.edit call around each component.

- `Breakdown`: seconds and peak memory per component over repeated runs.
- `FlopBreakdown`: FLOPs per component, from one `torch.utils.flop_counter.FlopCounterMode`.
- `shape_only()`: counts FLOPs without doing them (paper size on a CPU), see its docstring.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map_only
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from components.training.compute import CPU_ATTENTION_FLOPS

COUNTED_OPS = frozenset(flop_registry) | frozenset(CPU_ATTENTION_FLOPS)


class Breakdown:
    """Collects seconds and peak bytes per named component over repeated runs."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.peak_bytes: dict[str, int] = defaultdict(int)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter()
        yield
        if cuda:
            torch.cuda.synchronize(self.device)
        self.seconds[name].append(time.perf_counter() - start)
        peak = (
            torch.cuda.max_memory_allocated(self.device)
            if cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        )
        self.peak_bytes[name] = max(self.peak_bytes[name], peak)

    def rows(self) -> dict[str, dict[str, float]]:
        """Per component: the median seconds and the peak bytes."""
        return {
            name: {"median_seconds": statistics.median(times), "peak_bytes": self.peak_bytes[name]}
            for name, times in self.seconds.items()
        }

    def table(self, title: str) -> dict[str, dict[str, float]]:
        rows = self.rows()
        total = sum(row["median_seconds"] for row in rows.values())
        print(f"\n{title}")
        print(f"  {'component':<16}{'median ms':>12}{'share':>8}{'peak MiB':>12}")
        for name, row in rows.items():
            print(
                f"  {name:<16}{row['median_seconds'] * 1e3:>12.1f}"
                f"{row['median_seconds'] / total:>8.0%}{row['peak_bytes'] / 2**20:>12.0f}"
            )
        print(f"  {'total':<16}{total * 1e3:>12.1f}")
        return rows


class FlopBreakdown:
    """FLOPs per named component: the counter's running total read around each stage."""

    def __init__(self, counter: FlopCounterMode) -> None:
        self.counter = counter
        self.flops: dict[str, int] = defaultdict(int)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        before = self.counter.get_total_flops()
        yield
        self.flops[name] += self.counter.get_total_flops() - before


class _ShapeOnly(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func._overloadpacket not in COUNTED_OPS:
            return func(*args, **kwargs)
        device = next(t.device for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor))
        meta_args, meta_kwargs = tree_map_only(torch.Tensor, lambda t: t.to("meta"), (args, kwargs))
        out = func(*meta_args, **meta_kwargs)  # shapes, dtypes and strides, no arithmetic
        return tree_map_only(torch.Tensor, lambda t: _zeros(t, device), out)


def _zeros(like: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Zeros with `like`'s shape, strides and dtype, on `device`."""
    return torch.empty_strided(like.shape, like.stride(), dtype=like.dtype, device=device).zero_()


@contextmanager
def shape_only() -> Iterator[None]:
    """Inside this and a `flop_counter()` entered after it, every op the counter counts
    (matrix products, convolutions, attention, forward and backward) returns zeros of its
    output's shape instead of computing; all other ops run. FLOP formulas read only shapes, so
    the count is the real one (a test checks it against a computed step) at a fraction of the
    time, which makes paper-size counts feasible on a CPU. The values are meaningless: nothing
    here may depend on them except control flow that zeros keep on the measured path."""
    with _ShapeOnly():
        yield
