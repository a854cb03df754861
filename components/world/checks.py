"""Each world model checked alone, before the method sees it (DESIGN §10).

- Each CLIP's swapped-caption accuracy on held-out scenes: the true caption against three
  captions with one attribute swapped (chance: 1 in 4).
- The VAE's round trip: the share of pixels within the edit tolerance of the input, and the
  edit success of the rendered target's round trip pasted into the ground-truth region (the
  ceiling any UNet behind this VAE can reach).
- The inpainter's ceiling: how often, given the ground-truth region of a held-out edit and t_e
  as the prompt, it paints the rendered target there (`edit_success`), against a random region
  of the same area.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from components.config import MethodConfig
from components.evaluation.metrics import KnownAnswer, edit_success, inside, within_tolerance
from components.evaluation.systems import EditRequest, random_area
from components.generation import Generator, load_generator
from components.models.loading import load_clip
from components.world.edits import held_out_edit
from components.world.zoo.clip import swapped_caption_accuracy
from components.world.zoo.scenes import ScenePool

HELD_OUT = 256  # scenes of the CLIP checks
NAMESPACE = "zoo-check"  # scenes of neither training, the zoo's training, nor the test sets


def clip_check(clip: str, seed: int, side: int) -> float:
    """Swapped-caption accuracy of the open_clip model `clip` on held-out scenes."""
    model, _, tokenizer = load_clip(clip)
    held_out = ScenePool.draw(seed, HELD_OUT, side, NAMESPACE)
    return round(swapped_caption_accuracy(model.eval(), tokenizer, held_out, seed), 4)


@torch.no_grad()
def inpainting_check(
    inpainting: str, method: MethodConfig, seed: int, side: int, count: int, progress: bool = True
) -> dict[str, float]:
    """The generator alone, with the method's sampler settings, on `count` held-out world
    edits: `edit_success` when it repaints the ground-truth region
    under t_e (the ceiling of any region) and when it repaints a random region of that area,
    and the VAE's round trip (share of pixels within the edit tolerance)."""
    generator = load_generator(inpainting, method.scheduler)
    scores: dict[str, list[float]] = {
        "ground_truth": [],
        "random_area": [],
        "vae": [],
        "vae_ceiling": [],
    }
    for index in tqdm(range(count), desc="inpainting check", unit="edit", disable=not progress):
        edit = held_out_edit(seed, index, NAMESPACE)
        source = edit.source_image(side)
        truth = Image.fromarray(edit.region(side).astype(np.uint8) * 255, "L")
        request = EditRequest(f"check-{index}", source, edit.t_ins, edit.t_o, truth)
        answer = KnownAnswer(source, truth, edit.target_image(side))
        x_src = _signed(source)
        z_src = generator.encode_source(x_src)
        scores["vae"].append(
            float(within_tolerance(_picture(generator.decode(z_src)), source).mean())
        )
        round_trip = generator.decode(generator.encode_source(_signed(answer.target)))
        pasted = np.where(
            inside(truth)[..., None], np.asarray(_picture(round_trip)), np.asarray(source)
        )
        scores["vae_ceiling"].append(edit_success(Image.fromarray(pasted), answer))
        for name, region in (("ground_truth", truth), ("random_area", random_area(request, index))):
            hole = inside(region)
            generated = repaint(
                generator, source, hole, edit.t_e, index, method.steps, method.guidance_scale, z_src
            )
            edited = np.where(hole[..., None], generated, np.asarray(source))
            scores[name].append(edit_success(Image.fromarray(edited), answer))
    return {
        "inpainting/edit_success_ground_truth": round(float(np.mean(scores["ground_truth"])), 4),
        "inpainting/edit_success_random_area": round(float(np.mean(scores["random_area"])), 4),
        "vae/within_tolerance": round(float(np.mean(scores["vae"])), 4),
        "vae/edit_success_ceiling": round(float(np.mean(scores["vae_ceiling"])), 4),
    }


def repaint(
    generator: Generator,
    source: Image.Image,
    region: np.ndarray,
    prompt: str,
    seed: int,
    steps: int,
    guidance_scale: float,
    z_src: torch.Tensor | None = None,
) -> np.ndarray:
    """The generator's picture (H x W x 3, uint8) of `source` repainted inside `region` (H x W,
    bool) under `prompt`, from the noise of `seed`; `z_src`: the source's latents, if known."""
    latents = generator.generate(
        _signed(source),
        torch.from_numpy(region).float()[None, None],
        generator.encode_prompt([prompt]),
        torch.Generator().manual_seed(seed),
        steps=steps,
        guidance_scale=guidance_scale,
        z_src=z_src,
    )
    return np.asarray(_picture(generator.decode(latents)))


def _signed(picture: Image.Image) -> torch.Tensor:
    """An RGB picture as a batch of one in [-1, 1], as the generator's VAE takes it."""
    return torch.from_numpy(np.array(picture)).permute(2, 0, 1)[None].float() / 255 * 2 - 1


def _picture(images: torch.Tensor) -> Image.Image:
    """The first image of a batch in [-1, 1] as an RGB picture."""
    pixels = ((images[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte()
    return Image.fromarray(pixels.numpy(), "RGB")
