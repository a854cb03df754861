"""The paper's losses (Eqs. 4-11), each returning its terms by name; distances are 1 - cos."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """1 - cos(a, b) over the last dimension."""
    return 1.0 - F.cosine_similarity(a, b, dim=-1)


def patch_similarity(tokens: Tensor) -> Tensor:
    """Sim(F): pairwise cosine similarity of patch tokens, (B, N, d) -> (B, N, N)."""
    unit = F.normalize(tokens, dim=-1)
    return unit @ unit.transpose(1, 2)


class SemanticAlignmentLoss(nn.Module):
    """Eqs. 4-6: f_sem(F_Editedimg) should read as T_e, and f_sem(F_img) as T_o."""

    def forward(
        self, sem_edited: Tensor, sem_image: Tensor, t_e: Tensor, t_o: Tensor
    ) -> dict[str, Tensor]:
        loss = cosine_distance(sem_edited, t_e) + cosine_distance(sem_image, t_o)
        return {"sem_align": loss.mean()}


class ClipGuidanceLoss(nn.Module):
    """Eqs. 7-10 on the composed result: global, directional and structural CLIP terms."""

    def forward(
        self, i_res: Tensor, i_ori: Tensor, t_e: Tensor, t_o: Tensor, f_res: Tensor, f_img: Tensor
    ) -> dict[str, Tensor]:
        structure = (patch_similarity(f_img) - patch_similarity(f_res)).pow(2).mean(dim=(1, 2))
        return {
            "clip_global": cosine_distance(i_res, t_e).mean(),  # L_CLIPg
            "clip_direction": cosine_distance(i_res - i_ori, t_e - t_o).mean(),  # L_CLIPd
            "clip_structure": structure.mean(),  # L_CLIPs: mean over the N x N entries
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
        """The weighted CLIP part alone (the only path from the loss to P_region)."""
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
