"""The paper's losses (Eqs. 4-11), each returning its terms by name; distances are 1 - cos."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

# L_CLIPd's floor on |I_res - I_ori| (unit-length embeddings): 1 - cos of a change this small
# has a gradient of order 1/|change|, 1e8 at an exact zero, so below it the loss goes on along
# the same line instead (README, The method: where the equations leave a gap).
DIRECTION_FLOOR = 0.05


def cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """1 - cos(a, b) over the last dimension."""
    return 1.0 - F.cosine_similarity(a, b, dim=-1)


def patch_similarity(tokens: Tensor) -> Tensor:
    """Sim(F): pairwise cosine similarity of patch tokens, (B, N, d) -> (B, N, N)."""
    unit = F.normalize(tokens, dim=-1)
    return unit @ unit.transpose(1, 2)


def clip_direction_loss(
    i_res: Tensor, i_ori: Tensor, t_e: Tensor, t_o: Tensor, floor: float = DIRECTION_FLOOR
) -> tuple[Tensor, Tensor]:
    """Eq. 8 with the change's norm floored, batch mean; and the count of floored samples.

    1 - (I_res - I_ori) . (T_e - T_o) / (max(|I_res - I_ori|, floor) |T_e - T_o|): exactly
    1 - cos at or above the floor, linear in the change below it. An edit that changed nothing
    scores 1, as before, but now with a bounded pull (1 / floor) along T_e - T_o instead of none,
    so an empty region is not a state the head cannot leave."""
    change = i_res - i_ori
    norm = change.norm(dim=-1)
    floored = (norm.detach() < floor).sum().to(i_res.dtype)
    direction = F.normalize(t_e - t_o, dim=-1)
    return (1.0 - (change * direction).sum(-1) / norm.clamp(min=floor)).mean(), floored


def clip_structure_loss(f_res: Tensor, f_img: Tensor) -> Tensor:
    """Eq. 9: ||Sim(F_img) - Sim(F_res)||_2^2, the sum over the N x N entries, batch mean."""
    return (patch_similarity(f_img) - patch_similarity(f_res)).pow(2).sum(dim=(1, 2)).mean()


class SemanticAlignmentLoss(nn.Module):
    """Eqs. 4-6: f_sem(F_Editedimg) should read as T_e, and f_sem(F_img) as T_o."""

    def forward(
        self, sem_edited: Tensor, sem_image: Tensor, t_e: Tensor, t_o: Tensor
    ) -> dict[str, Tensor]:
        loss = cosine_distance(sem_edited, t_e) + cosine_distance(sem_image, t_o)
        return {"sem_align": loss.mean()}


class ClipGuidanceLoss(nn.Module):
    """Eqs. 7-10 on the composed result: global, directional and structural CLIP terms.

    `clip_direction_floored` counts the samples of the batch whose edit moved the image
    embedding by less than L_CLIPd's floor; it is logged, never weighted."""

    def forward(
        self, i_res: Tensor, i_ori: Tensor, t_e: Tensor, t_o: Tensor, f_res: Tensor, f_img: Tensor
    ) -> dict[str, Tensor]:
        direction, floored = clip_direction_loss(i_res, i_ori, t_e, t_o)
        return {
            "clip_global": cosine_distance(i_res, t_e).mean(),  # L_CLIPg (Eq. 7)
            "clip_direction": direction,  # L_CLIPd (Eq. 8)
            "clip_structure": clip_structure_loss(f_res, f_img),  # L_CLIPs (Eq. 9)
            "clip_direction_floored": floored,
        }


class RegionEditLoss(nn.Module):
    """Eq. 11: L_total = alpha L_semAlign + beta (lg L_CLIPg + ld L_CLIPd + ls L_CLIPs)."""

    def __init__(
        self, alpha: float, beta: float, lambda_g: float, lambda_d: float, lambda_s: float
    ) -> None:
        super().__init__()
        self.alpha, self.beta = alpha, beta
        self.lambdas = {
            "clip_global": lambda_g,
            "clip_direction": lambda_d,
            "clip_structure": lambda_s,
        }
        self.semantic_alignment_loss = SemanticAlignmentLoss()
        self.clip_guidance_loss = ClipGuidanceLoss()

    def clip_loss(self, terms: dict[str, Tensor]) -> Tensor:
        """Eq. 10, the weighted CLIP part alone (the only path from the loss to P_region)."""
        return sum(weight * terms[name] for name, weight in self.lambdas.items())

    def forward(
        self,
        sem_edited: Tensor,
        sem_image: Tensor,
        i_res: Tensor,
        i_ori: Tensor,
        t_e: Tensor,
        t_o: Tensor,
        f_res: Tensor,
        f_img: Tensor,
    ) -> dict[str, Tensor]:
        terms = self.semantic_alignment_loss(sem_edited, sem_image, t_e, t_o)
        terms |= self.clip_guidance_loss(i_res, i_ori, t_e, t_o, f_res, f_img)
        terms["clip"] = self.clip_loss(terms)
        terms["total"] = self.alpha * terms["sem_align"] + self.beta * terms["clip"]
        return terms
