"""The generator's speed options (method.attention, channels_last, compile_unet) and bf16
autocast on the tiny SD zoo: each changes what it should and keeps the output of the plain
fp32 generator, exactly where the arithmetic is the same, closely where it is not."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from components.generation import load_generator
from components.generation.generator import Generator
from components.generation.stable_diffusion import StableDiffusionGenerator
from components.method.build import build_region_edit_model

PROMPTS = ["a red cat on a sofa", "a dog"]


def generator(zoo, device: str = "cpu", **options) -> Generator:
    """Freshly loaded parts each time: the options change the modules in place."""
    return load_generator(str(zoo["sd-inpainting"]), **options).to(device)


def generate(gen: Generator, seed: int = 3, **autocast) -> torch.Tensor:
    device = gen.device
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    mask = torch.zeros(2, 1, 64, 64)
    mask[:, :, 16:48, 8:40] = 1
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(autocast)):
        latents = gen.generate(
            images.to(device),
            mask.to(device),
            gen.encode_prompt(PROMPTS),
            torch.Generator(device).manual_seed(seed),
            steps=3,
            guidance_scale=7.5,
        )
    return latents.float().cpu()


@pytest.fixture(scope="module")
def reference(zoo) -> torch.Tensor:
    return generate(generator(zoo))


def distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative L2 distance of a from b."""
    return ((a - b).norm() / b.norm()).item()


@pytest.fixture(scope="module")
def seed_distance(zoo, reference) -> float:
    """How far another noise sample moves the output: the scale for "close" below."""
    return distance(generate(generator(zoo), seed=4), reference)


def test_sdpa_is_set_explicitly_and_eager_attention_matches_it(zoo, reference):
    sdpa = generator(zoo)
    for module in (sdpa.parts.unet, sdpa.parts.vae):
        assert {type(p) for p in module.attn_processors.values()} == {AttnProcessor2_0}
    eager = generator(zoo, attention="eager")
    assert {type(p) for p in eager.parts.unet.attn_processors.values()} == {AttnProcessor}
    torch.testing.assert_close(generate(eager), reference, atol=1e-4, rtol=0)


def test_channels_last_changes_the_layout_not_the_result(zoo, reference):
    gen = generator(zoo, channels_last=True)
    conv = gen.parts.unet.conv_in.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    # measured 2.7e-5: other convolution kernels sum in another order, and guidance (x7.5)
    # amplifies that over the steps; a wrong layout would be off by the latents' size (~1)
    torch.testing.assert_close(generate(gen), reference, atol=1e-4, rtol=0)
    back = StableDiffusionGenerator(gen.parts)  # the same modules, in the default layout
    assert back.parts.unet.conv_in.weight.is_contiguous()


def test_bf16_autocast_is_close_to_fp32_but_not_equal(zoo, reference, seed_distance):
    bf16 = generate(generator(zoo), autocast=True)
    # random tiny models and guidance x7.5 amplify rounding: measured 0.02 of the seed distance
    # on a CPU and 0.11 on an H200; a real error would be as far as another seed
    assert 0 < distance(bf16, reference) < 0.25 * seed_distance


def test_unknown_attention_is_refused_by_name(zoo):
    with pytest.raises(ValueError, match="attention='flash'"):
        generator(zoo, attention="flash")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch.compile is checked on a GPU")
def test_compiled_unet_matches_the_eager_unet_on_a_gpu(zoo, seed_distance):
    plain = generate(generator(zoo, device="cuda"))
    compiled = generate(generator(zoo, device="cuda", compile_denoiser=True))
    # fused kernels round differently (and TF32 convolutions on both sides): close, not equal
    assert distance(compiled, plain) < 0.25 * seed_distance


def test_the_method_builder_applies_the_options(zoo_params):
    method = zoo_params.method.model_copy(update={"attention": "eager", "channels_last": True})
    unet = build_region_edit_model(zoo_params.models, method).generator.parts.unet
    assert {type(p) for p in unet.attn_processors.values()} == {AttnProcessor}
    assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
