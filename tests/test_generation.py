"""The frozen generators on the tiny random zoo (SD, SDXL, FLUX.1 Fill): parity with diffusers'
own pipelines, Eq. 23 blending in each noise form, determinism, the gradient path through decode;
for SD also other schedulers and a 4-channel UNet; clear errors for bad folders and inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers import (
    FluxFillPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionXLInpaintPipeline,
)
from diffusers.utils.torch_utils import randn_tensor
from safetensors.torch import load_file

from components.generation import load_generator
from components.generation.generator import Generator
from components.models.generators import UnknownGeneratorError
from components.models.loading import ModelLoadError
from components.random_models.build import GENERATOR_FOLDERS as FOLDERS
from components.random_models.inpainting import build_inpainting

PROMPTS = ["a red cat on a sofa", "a dog"]
STEPS = 3
GUIDANCE = 7.5
TOLERANCE = 1e-5  # same ops in the same order on CPU: measured 0.0, allow float noise


@pytest.fixture(scope="module")
def sd_folder(zoo) -> Path:
    return zoo["sd-inpainting"]


@pytest.fixture(scope="module", params=list(FOLDERS))
def family(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def loaded(zoo) -> dict[str, Generator]:
    return {}


@pytest.fixture
def generator(family, zoo, loaded) -> Generator:
    """Each family's generator, loaded once per module from the zoo's folder."""
    if family not in loaded:
        loaded[family] = load_generator(str(zoo[FOLDERS[family]]))
    return loaded[family]


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


def _generate(generator: Generator, images, mask, seed: int = 3, **options):
    conditioning = generator.encode_prompt(PROMPTS)
    rng = torch.Generator().manual_seed(seed)
    return generator.generate(images, mask, conditioning, rng, STEPS, GUIDANCE, **options)


def _latent_mask(mask: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    return F.interpolate(mask, size=latents.shape[-2:]).expand_as(latents).bool()


def test_the_folder_names_the_generator(generator: Generator, family: str) -> None:
    assert generator.family == family


def test_every_part_is_frozen_and_in_eval(generator: Generator) -> None:
    modules = generator.frozen_modules()
    assert {"vae", "text_encoder"} <= set(modules) and generator.denoiser in modules.values()
    for module in modules.values():
        assert not module.training
        assert not any(p.requires_grad for p in module.parameters())


def _reference(family: str, folder: Path, pixels01, mask, output_type: str) -> torch.Tensor:
    """diffusers' own pipeline on the same folder, seed, steps and guidance, no blending. SDXL's
    pipeline defaults to strength 0.9999 (it would skip pure noise): 1.0 is what ours does.
    FLUX's draws the source's latent before the noise, which ours (starting from pure noise)
    never needs: the same noise is handed to it as `latents`, drawn from the same generator."""
    rng = torch.Generator().manual_seed(3)
    common = {
        "prompt": PROMPTS,
        "image": pixels01,
        "mask_image": mask,
        "num_inference_steps": STEPS,
        "guidance_scale": GUIDANCE,
        "generator": rng,
        "output_type": output_type,
    }
    if family == "sd":
        pipeline = StableDiffusionInpaintPipeline.from_pretrained(
            folder, safety_checker=None, requires_safety_checker=False
        )
    elif family == "sdxl":
        pipeline = StableDiffusionXLInpaintPipeline.from_pretrained(folder)
        common |= {"strength": 1.0, "height": 64, "width": 64}
    else:
        pipeline = FluxFillPipeline.from_pretrained(folder)
        noise = randn_tensor((2, 16, 8, 8), generator=rng)
        common |= {"latents": FluxFillPipeline._pack_latents(noise, 2, 16, 8, 8)}
        common |= {"height": 64, "width": 64}
    pipeline.set_progress_bar_config(disable=True)
    out = pipeline(**common).images
    if family == "flux-fill" and output_type == "latent":
        return FluxFillPipeline._unpack_latents(out, 64, 64, 8)
    return out


def test_matches_diffusers_pipeline(family, generator, zoo, images, pixels01, mask) -> None:
    folder = zoo[FOLDERS[family]]
    latents = _generate(generator, images, mask, blend=False, masked_image_latents="exact")
    expected = _reference(family, folder, pixels01, mask, "latent")
    assert latents.shape == expected.shape and latents.shape[-2:] == (8, 8)
    assert (latents - expected).abs().max() <= TOLERANCE
    decoded = generator.decode(latents).permute(0, 2, 3, 1).numpy() / 2 + 0.5
    assert np.abs(decoded - _reference(family, folder, pixels01, mask, "np")).max() <= TOLERANCE


def test_blending_keeps_the_source_outside_the_mask(generator, images, mask) -> None:
    z_src = generator.encode_source(images)
    latents = _generate(generator, images, mask, z_src=z_src)
    inside = _latent_mask(mask, latents)
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
    generator = load_generator(str(sd_folder), scheduler=scheduler)
    assert type(generator.parts.scheduler).__name__ == scheduler
    z_src = generator.encode_source(images)
    latents = _generate(generator, images, mask, z_src=z_src)
    assert torch.isfinite(latents).all()
    outside = ~_latent_mask(mask, latents)
    assert torch.equal(latents[outside], z_src[outside])


def test_four_channel_unet_inpaints_by_blending_alone(tmp_path, images, mask) -> None:
    folder = build_inpainting(tmp_path / "sd-plain", seed=0, in_channels=4)
    generator = load_generator(str(folder))
    z_src = generator.encode_source(images)
    latents = _generate(generator, images, mask, z_src=z_src)
    inside = _latent_mask(mask, latents)
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
    assert all(p.grad is None for p in generator.vae.parameters())


def test_refuses_pickled_weights(sd_folder, tmp_path) -> None:
    folder = shutil.copytree(sd_folder, tmp_path / "pickled")
    weights = folder / "vae" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(weights), folder / "vae" / "diffusion_pytorch_model.bin")
    weights.unlink()
    with pytest.raises(ModelLoadError, match=r"pickled/vae: holds only pickled weights"):
        load_generator(str(folder))


def test_missing_folder_says_to_build_the_zoo(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="regionedit zoo"):
        load_generator(str(tmp_path / "models" / "zoo" / "sd-inpainting"))


def test_unknown_scheduler_lists_the_compatible_ones(sd_folder) -> None:
    with pytest.raises(ValueError, match="DPMSolverMultistepScheduler"):
        load_generator(str(sd_folder), scheduler="NoSuchScheduler")


def test_a_pipeline_no_generator_runs_is_named(tmp_path, sd_folder) -> None:
    folder = shutil.copytree(sd_folder, tmp_path / "other")
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(
        json.dumps(index | {"_class_name": "KandinskyPipeline"})
    )
    with pytest.raises(UnknownGeneratorError, match="'KandinskyPipeline'.*FluxFillPipeline"):
        load_generator(str(folder))


def test_flux_refuses_a_side_it_cannot_pack_and_eager_attention(zoo, images, mask) -> None:
    generator = load_generator(str(zoo["flux-fill"]))
    odd = F.interpolate(images, size=(72, 72))  # 9x9 latent cells: no 2x2 patches
    with pytest.raises(ValueError, match="multiple of 16"):
        _generate(generator, odd, F.interpolate(mask, size=(72, 72)))
    with pytest.raises(ValueError, match="attention='eager'"):
        load_generator(str(zoo["flux-fill"]), attention="eager")
