"""Frozen generators behind one interface (`generator.Generator`): SD 1.5 / SD 2 and SDXL
(`stable_diffusion`), FLUX.1 Fill (`flux`). `load_generator` picks one from the model folder."""

from __future__ import annotations

from components.generation.flux import FluxFillGenerator
from components.generation.generator import Attention, Generator
from components.generation.stable_diffusion import (
    StableDiffusionGenerator,
    StableDiffusionXLGenerator,
)
from components.models.generators import GeneratorParts, load_generator_parts

GENERATORS: dict[str, type[Generator]] = {
    "sd": StableDiffusionGenerator,
    "sdxl": StableDiffusionXLGenerator,
    "flux-fill": FluxFillGenerator,
}


def generator_on(
    family: str,
    parts: GeneratorParts,
    attention: Attention = "sdpa",
    channels_last: bool = False,
    compile_denoiser: bool = False,
) -> Generator:
    """The generator of `family` on already loaded (or built) `parts`."""
    return GENERATORS[family](parts, attention, channels_last, compile_denoiser)


def load_generator(
    name: str,
    scheduler: str | None = None,
    trust_remote_code: bool = False,
    attention: Attention = "sdpa",
    channels_last: bool = False,
    compile_denoiser: bool = False,
) -> Generator:
    """The frozen generator in folder or hub id `name`, of the family its model_index.json
    names; `scheduler` swaps in another compatible diffusers sampler class."""
    family, parts = load_generator_parts(name, scheduler, trust_remote_code)
    return generator_on(family, parts, attention, channels_last, compile_denoiser)
