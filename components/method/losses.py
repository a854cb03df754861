"""The paper's losses (Eqs. 4-11), each returning its terms by name; distances are 1 - cos."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

# L_CLIPd leaves out a sample whose edit moved its CLIP image embedding by less than this
# (unit-length embeddings): the direction of a zero change is undefined, and 1 - cos of a
# near-zero vector has a gradient of order 1/|I_res - I_ori| (about 1e8 for an exact zero).
MIN_DIRECTION_CHANGE = 1e-4


def cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """1 - cos(a, b) over the last dimension."""
    return 1.0 - F.cosine_similarity(a, b, dim=-1)


def patch_similarity(tokens: Tensor) -> Tensor:
    """Sim(F): pairwise cosine similarity of patch tokens, (B, N, d) -> (B, N, N)."""
    unit = F.normalize(tokens, dim=-1)
    return unit @ unit.transpose(1, 2)


def clip_direction_loss(
    i_res: Tensor, i_ori: Tensor, t_e: Tensor, t_o: Tensor
) -> tuple[Tensor, Tensor]:
    """Eq. 8, batch mean; and the count of samples left out.

    A sample whose edit changed nothing has no direction: it scores 1, the distance that
    1 - cos gives a zero vector (no step along T_e - T_o), as a constant. It is indexed away
    before the cosine, not multiplied by zero, so it contributes no gradient at all (no 0 * inf),
    and an empty region is not scored as a perfect direction."""
    change = i_res - i_ori
    kept = change.detach().norm(dim=-1) >= MIN_DIRECTION_CHANGE
    left_out = (~kept).sum().to(i_res.dtype)
    unmoved = change.sum(dim=-1) * 0.0 + 1.0  # in the graph, with a zero gradient
    moved = cosine_distance(change[kept], (t_e - t_o)[kept])
    return unmoved.index_put((kept.nonzero(as_tuple=True)[0],), moved).mean(), left_out


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

    `clip_direction_left_out` counts the samples of the batch that L_CLIPd left out (no change
    to read a direction from); it is logged, never weighted."""

    def forward(
        self, i_res: Tensor, i_ori: Tensor, t_e: Tensor, t_o: Tensor, f_res: Tensor, f_img: Tensor
    ) -> dict[str, Tensor]:
        direction, left_out = clip_direction_loss(i_res, i_ori, t_e, t_o)
        return {
            "clip_global": cosine_distance(i_res, t_e).mean(),  # L_CLIPg (Eq. 7)
            "clip_direction": direction,  # L_CLIPd (Eq. 8)
            "clip_structure": clip_structure_loss(f_res, f_img),  # L_CLIPs (Eq. 9)
            "clip_direction_left_out": left_out,
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
