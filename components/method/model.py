"""One training step of the method: frozen encoders -> region head -> mask -> frozen generator
-> differentiable composition -> CLIP on the result -> losses (paper §3, Appendix A)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from components.config import MethodConfig
from components.generation.generator import Generator, PromptConditioning
from components.method.composition import compose_in_latents, compose_in_pixels, resized
from components.method.encoders import FrozenEncoders
from components.method.features import CachedFeatures, cacheable_features
from components.method.losses import RegionEditLoss
from components.method.mask import proposal_region, straight_through_mask, to_grid, upsample
from components.method.region_head import RegionHead

Stage = Callable[[str], AbstractContextManager]


def untimed(name: str) -> AbstractContextManager:
    return nullcontext()


@dataclass
class FrozenFeatures:
    """Everything computed without gradients from (X, t_o, t_ins, t_e)."""

    t_o: Tensor
    t_e: Tensor
    i_ori: Tensor
    f_img: Tensor
    f_ins: Tensor
    ins_padding: Tensor
    conditioning: PromptConditioning  # the generator's prompt conditioning for t_e
    z_src: Tensor


@dataclass
class StepOutput:
    terms: dict[str, Tensor]  # every loss term by name, and "total"
    p_region: Tensor  # (B, N)
    mask: Tensor  # (B, 1, g, g) hard mask with a straight-through gradient
    proposal: Tensor  # (B, 1, g, g) where content was generated
    result: Tensor  # (B, 3, H, W) the composed edit, pixels in [0, 1]


class RegionEditModel(nn.Module):
    """The region head in the loop. Only `head` is trainable."""

    def __init__(self, encoders: FrozenEncoders, generator: Generator, cfg: MethodConfig) -> None:
        super().__init__()
        self.encoders = encoders
        self.generator = generator
        self.cfg = cfg
        self.head = RegionHead(encoders.dim, cfg.heads, cfg.head)
        self.loss = RegionEditLoss(cfg.alpha, cfg.beta, cfg.lambda_g, cfg.lambda_d, cfg.lambda_s)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    @torch.no_grad()
    def frozen_features(
        self,
        images: Tensor,
        t_o: list[str],
        t_ins: list[str],
        t_e: list[str],
        z_src_side: int,
        cached: CachedFeatures | None = None,
    ) -> FrozenFeatures:
        """The source's CLIP image features, and the rest from `cached` when given (the
        `features` stage's output, any storage dtype) or computed here, z_src at
        `z_src_side` (where the generator runs)."""
        i_ori, f_img = self.encoders.image(images)
        if cached is None:
            cached = cacheable_features(
                self.encoders, self.generator, images, t_o, t_ins, t_e, z_src_side
            )
        cached = cached.to(f_img.device)
        batch, dtype = len(f_img), self.generator.dtype
        return FrozenFeatures(
            t_o=cached.t_o.to(f_img.dtype),
            t_e=cached.t_e.to(f_img.dtype),
            i_ori=i_ori,
            f_img=f_img,
            f_ins=cached.f_ins.to(f_img.dtype),
            ins_padding=cached.ins_padding.bool(),
            conditioning=PromptConditioning(
                text={name: value.to(dtype) for name, value in cached.prompt.items()},
                unconditional={  # one row for the batch
                    name: value.to(dtype).expand(batch, *value.shape[1:])
                    for name, value in cached.unconditional.items()
                },
            ),
            z_src=cached.z_src.to(self.generator.vae.dtype),
        )

    def forward(
        self,
        images: Tensor,
        t_o: list[str],
        t_ins: list[str],
        t_e: list[str],
        generator: torch.Generator,
        stage: Stage = untimed,
        cached: CachedFeatures | None = None,
    ) -> StepOutput:
        """images (B, 3, H, W) in [0, 1] at `method.resolution`. `stage(name)` wraps each
        component, so a benchmark can time them (encoders, head, generation, composition,
        clip_on_result, losses) without a second copy of this sequence. `cached`: the batch's
        precomputed frozen features (the `features` stage), so only CLIP's image tower runs in
        "encoders"; the texts are then not read."""
        cfg = self.cfg
        with stage("encoders"):
            features = self.frozen_features(
                images, t_o, t_ins, t_e, cfg.in_training.resolution, cached
            )
        with stage("head"):
            prediction = self.head(features.f_img, features.f_ins, features.ins_padding)
            mask = to_grid(straight_through_mask(prediction.p_region, cfg.tau))
            proposal = proposal_region(
                prediction.p_region, cfg.tau, cfg.proposal_dilation, cfg.min_proposal_cells
            )
            sem_edited = self.head.f_sem(prediction.f_edited)
            sem_image = self.head.f_sem(features.f_img)
        terms, result = self.region_losses(
            images, features, mask, proposal, generator, stage, sem_edited, sem_image
        )
        return StepOutput(terms, prediction.p_region, mask, proposal, result)

    def region_losses(
        self,
        images: Tensor,
        features: FrozenFeatures,
        mask: Tensor,
        proposal: Tensor,
        generator: torch.Generator,
        stage: Stage = untimed,
        sem_edited: Tensor | None = None,
        sem_image: Tensor | None = None,
    ) -> tuple[dict[str, Tensor], Tensor]:
        """Generate inside `proposal`, compose with `mask` (both (B, 1, g, g)) and score the
        result: every loss term and the composed image. The training step passes the head's
        mask; the loss landscape passes given regions (ground truth, empty, whole, random).
        Without the head's semantic features, L_semAlign and L_total are left out: they do not
        depend on the region. The generator runs with `method.in_training`'s resolution, steps
        and guidance; the generation is resized to the images' side before the composition."""
        cfg, generation = self.cfg, self.cfg.in_training
        with stage("generation"):
            z_generated = self.generator.generate(
                resized(images, generation.resolution) * 2 - 1,
                upsample(proposal, generation.resolution),
                features.conditioning,
                generator,
                steps=generation.steps,
                guidance_scale=generation.guidance_scale,
                blend=True,
                masked_image_latents=cfg.masked_image_latents,
                z_src=features.z_src,
            )
        with stage("composition"):
            result = self._compose(mask, proposal, z_generated, features.z_src, images)
        with stage("clip_on_result"):
            i_res, f_res = self.encoders.image(result)
        with stage("losses"):
            clip_terms = (i_res, features.i_ori, features.t_e, features.t_o, f_res, features.f_img)
            if sem_edited is None or sem_image is None:
                terms = self.loss.clip_guidance_loss(*clip_terms)
                terms["clip"] = self.loss.clip_loss(terms)
            else:
                terms = self.loss(sem_edited, sem_image, *clip_terms)
        return terms, result

    def _compose(
        self, mask: Tensor, proposal: Tensor, z_generated: Tensor, z_src: Tensor, images: Tensor
    ) -> Tensor:
        if self.cfg.composition == "latent":
            return compose_in_latents(mask, z_generated, z_src, self._decode)
        with torch.no_grad():  # in pixel space the generation is a constant
            inside = upsample(proposal, images.shape[-2:]).bool()
            decoded = resized(self._decode(z_generated), images.shape[-1])
            generated = torch.where(inside, decoded, images)
        return compose_in_pixels(mask, generated, images)

    def _decode(self, latents: Tensor) -> Tensor:
        return (self.generator.decode(latents) + 1) / 2
