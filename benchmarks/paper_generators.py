"""SDXL inpainting and FLUX.1 Fill at their real sizes with random weights, built in memory.

SD 1.5's paper-size pipeline is small enough to be written to disk once and loaded back through
the project's loader (train_step.paper_models). SDXL's parts hold 3.5 billion parameters and
FLUX.1 Fill's 16.9 billion (its transformer 11.9, T5-XXL 4.8): 14 and 68 GB in fp32, more than
this machine's memory. So their zoo builders' components are made from the same configs under
accelerate's `init_empty_weights` (parameters on the meta device, buffers real) and given weights
here: for a FLOP count, every weight is one zero expanded to its shape (no memory; the counted
ops are not computed, breakdown.shape_only), and on a GPU real random weights.
"""

from __future__ import annotations

from typing import Any

import torch
from accelerate import init_empty_weights
from torch import nn

from components.generation import generator_on
from components.generation.generator import Generator
from components.models.generators import FluxFillParts, StableDiffusionParts, frozen
from components.random_models import flux as flux_zoo
from components.random_models import sdxl as sdxl_zoo

IN_MEMORY = ("sdxl", "flux-fill")
WEIGHT_STD = 0.02  # random weights on a GPU: small enough that activations stay finite


def paper_generator(
    family: str, device: torch.device, hollow: bool, size: str = "paper"
) -> Generator:
    """The generator of `family` on `device` at its paper size (or the zoo's tiny one, which a
    test counts against the saved tiny folder); `hollow`: weights for counting only."""
    if family not in IN_MEMORY:
        raise ValueError(f"{family!r}: the generators built in memory are {IN_MEMORY}")
    with init_empty_weights(include_buffers=False):
        if family == "sdxl":
            shape = sdxl_zoo.PAPER_SHAPE if size == "paper" else sdxl_zoo.TINY_SHAPE
            components: dict[str, Any] = sdxl_zoo.sdxl_parts(0, shape)
        else:
            shape = flux_zoo.PAPER_SHAPE if size == "paper" else flux_zoo.TINY_SHAPE
            components = flux_zoo.flux_fill_parts(0, shape)
    for value in components.values():
        if isinstance(value, nn.Module):
            _materialize(value, device, hollow)
    if family == "sdxl":  # as the SDXL pipelines' config has them
        parts: Any = StableDiffusionParts(**components, force_zeros_for_empty_prompt=True)
    else:
        parts = FluxFillParts(**components)
    return generator_on(family, frozen(parts))


def _materialize(module: nn.Module, device: torch.device, hollow: bool) -> None:
    """Give every meta parameter a value on `device`, tied parameters the same one."""
    made: dict[int, nn.Parameter] = {}
    for name, parameter in module.named_parameters(remove_duplicate=False):
        if id(parameter) not in made:
            if hollow:
                value = torch.zeros((), device=device).expand(parameter.shape)
            else:
                value = torch.empty(parameter.shape, device=device).normal_(0, WEIGHT_STD)
            made[id(parameter)] = nn.Parameter(value, requires_grad=False)
        owner, _, leaf = name.rpartition(".")
        module.get_submodule(owner)._parameters[leaf] = made[id(parameter)]
    module.to(device)  # the buffers
