"""The frozen inpainting generator on the tiny random SD zoo: parity with diffusers' pipeline,
Eq. 23 blending, determinism, other schedulers, a 4-channel UNet, and the gradient path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers import StableDiffusionInpaintPipeline
from safetensors.torch import load_file

from components.generation.inpainting import InpaintingGenerator
from components.models.inpainting import load_inpainting
from components.models.loading import ModelLoadError
from components.zoo.inpainting import build_inpainting

PROMPTS = ["a red cat on a sofa", "a dog"]
STEPS = 3
GUIDANCE = 7.5
TOLERANCE = 1e-5  # same ops in the same order on CPU: measured 0.0, allow float noise


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_inpainting(tmp_path_factory.mktemp("zoo") / "sd-inpainting", seed=0)


@pytest.fixture(scope="module")
def generator(sd_folder: Path) -> InpaintingGenerator:
    return InpaintingGenerator(load_inpainting(str(sd_folder)))


@pytest.fixture(scope="module")
def pixels01() -> torch.Tensor:
    """Two 64x64 RGB images in [0,1], what diffusers' pipeline expects as a tensor."""
    return torch.randint(0, 256, (2, 3, 64, 64), generator=torch.Generator().manual_seed(0)) / 255


@pytest.fixture(scope="module")
def images(pixels01: torch.Tensor) -> torch.Tensor:
    return 2.0 * pixels01 - 1.0  # the pipeline's own normalisation, so inputs match bit for bit


@pytest.fixture(scope="module")
def mask() -> torch.Tensor:
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 16:48, 8:40] = 1
    mask[1, :, 0:24, 24:64] = 1
    return mask


def _generate(generator: InpaintingGenerator, images, mask, seed: int = 3, **options):
    conditioning = generator.encode_prompt(PROMPTS)
    rng = torch.Generator().manual_seed(seed)
    return generator.generate(images, mask, conditioning, rng, STEPS, GUIDANCE, **options)


def _latent_mask(mask: torch.Tensor) -> torch.Tensor:
    return F.interpolate(mask, size=(8, 8)).expand(-1, 4, -1, -1).bool()


def test_every_part_is_frozen_and_in_eval(generator: InpaintingGenerator) -> None:
    parts = generator.parts
    for module in (parts.unet, parts.vae, parts.text_encoder):
        assert not module.training
        assert not any(p.requires_grad for p in module.parameters())


def test_matches_diffusers_pipeline(sd_folder, generator, images, pixels01, mask) -> None:
    pipeline = StableDiffusionInpaintPipeline.from_pretrained(
        sd_folder, safety_checker=None, requires_safety_checker=False
    )
    pipeline.set_progress_bar_config(disable=True)

    def reference(output_type: str):
        return pipeline(
            prompt=PROMPTS,
            image=pixels01,
            mask_image=mask,
            num_inference_steps=STEPS,
            guidance_scale=GUIDANCE,
            generator=torch.Generator().manual_seed(3),
            output_type=output_type,
        ).images

    latents = _generate(generator, images, mask, blend=False, masked_image_latents="exact")
    assert latents.shape == (2, 4, 8, 8)
    assert (latents - reference("latent")).abs().max() <= TOLERANCE
    decoded = generator.decode(latents).permute(0, 2, 3, 1).numpy() / 2 + 0.5
    assert np.abs(decoded - reference("np")).max() <= TOLERANCE


def test_blending_keeps_the_source_outside_the_mask(generator, images, mask) -> None:
    z_src = generator.encode_source(images)
    latents = _generate(generator, images, mask, z_src=z_src)
    inside = _latent_mask(mask)
    assert torch.equal(latents[~inside], z_src[~inside])  # Eq. 23 after the last step
    assert not torch.allclose(latents[inside], z_src[inside])


def test_seeded_and_deterministic(generator, images, mask) -> None:
    first = _generate(generator, images, mask, seed=5)
    assert torch.equal(first, _generate(generator, images, mask, seed=5))
    assert not torch.equal(first, _generate(generator, images, mask, seed=6))


def test_approx_masked_image_latents_run_and_differ(generator, images, mask) -> None:
    exact = _generate(generator, images, mask, masked_image_latents="exact")
    approx = _generate(generator, images, mask, masked_image_latents="approx")
    assert torch.isfinite(approx).all()
    assert not torch.allclose(exact, approx)


SCHEDULERS = ["DPMSolverMultistepScheduler", "EulerAncestralDiscreteScheduler"]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_other_schedulers_run(sd_folder, images, mask, scheduler: str) -> None:
    generator = InpaintingGenerator(load_inpainting(str(sd_folder), scheduler=scheduler))
    assert type(generator.parts.scheduler).__name__ == scheduler
    z_src = generator.encode_source(images)
    latents = _generate(generator, images, mask, z_src=z_src)
    assert torch.isfinite(latents).all()
    assert torch.equal(latents[~_latent_mask(mask)], z_src[~_latent_mask(mask)])


def test_four_channel_unet_inpaints_by_blending_alone(tmp_path, images, mask) -> None:
    folder = build_inpainting(tmp_path / "sd-plain", seed=0, in_channels=4)
    generator = InpaintingGenerator(load_inpainting(str(folder)))
    z_src = generator.encode_source(images)
    latents = _generate(generator, images, mask, z_src=z_src)
    inside = _latent_mask(mask)
    assert torch.equal(latents[~inside], z_src[~inside])
    assert not torch.allclose(latents[inside], z_src[inside])
    with pytest.raises(ValueError, match="blend=True"):
        _generate(generator, images, mask, blend=False)


def test_decode_passes_a_gradient_to_a_latent_mask(generator, images, mask) -> None:
    z_src = generator.encode_source(images)
    z_gen = _generate(generator, images, mask, z_src=z_src)
    soft_mask = torch.full((2, 1, 8, 8), 0.5, requires_grad=True)
    res = soft_mask * z_gen + (1 - soft_mask) * z_src  # the differentiable composition
    generator.decode(res).sum().backward()
    assert torch.isfinite(soft_mask.grad).all() and soft_mask.grad.abs().sum() > 0
    assert all(p.grad is None for p in generator.parts.vae.parameters())


def test_refuses_pickled_weights(sd_folder, tmp_path) -> None:
    folder = shutil.copytree(sd_folder, tmp_path / "pickled")
    weights = folder / "vae" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(weights), folder / "vae" / "diffusion_pytorch_model.bin")
    weights.unlink()
    with pytest.raises(ModelLoadError, match=r"pickled/vae: holds only pickled weights"):
        load_inpainting(str(folder))


def test_missing_folder_says_to_build_the_zoo(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="regionedit zoo"):
        load_inpainting(str(tmp_path / "models" / "zoo" / "sd-inpainting"))


def test_unknown_scheduler_lists_the_compatible_ones(sd_folder) -> None:
    with pytest.raises(ValueError, match="DPMSolverMultistepScheduler"):
        load_inpainting(str(sd_folder), scheduler="NoSuchScheduler")
