"""Training compute, counted: FLOPs of a training step by torch's own counter.

Every training in the project (the region head, the pair-trained InstructPix2Pix of the
comparison) counts the FLOPs of its first optimisation step (forward and backward) and logs
FLOPs per training sample and in total, so that runs at each data scale can be compared by
what they cost as well as by what they score.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

aten = torch.ops.aten


def _attention(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _attention_backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


# torch's FLOP counter has no formula for the CPU's fused attention kernel, so attention on a
# CPU would count as 0 FLOPs; these give it the GPU kernels' formulas (the same maths, on shapes).
CPU_ATTENTION_FLOPS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _attention,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _attention_backward,
}


def flop_counter() -> FlopCounterMode:
    """torch's FLOP counter, attention on a CPU included."""
    return FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS)


def compute_record(flops_per_sample: float, samples_seen: int, seconds: float) -> dict:
    """What a training cost: FLOPs per training sample (one step's count over its batch), in
    total over the samples it saw, and its wall-clock seconds."""
    return {
        "flops_per_sample": flops_per_sample,
        "samples_seen": samples_seen,
        "train_tflop": flops_per_sample * samples_seen / 1e12,
        "train_seconds": seconds,
    }
