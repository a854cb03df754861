"""The learning-rate schedule every world model trains with: a linear warm-up, then a cosine
decay to zero by the last step (a short run ends on small steps instead of mid-stride)."""

from __future__ import annotations

import math

import torch


def warmup_cosine(
    optimiser: torch.optim.Optimizer, steps: int, warmup: int
) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / steps))

    return torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
