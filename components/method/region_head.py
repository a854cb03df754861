"""The learnable region head (paper §3.2): where an instruction should act on an image.

F_img (B,N,d) are CLIP patch tokens, F_ins (B,M,d) instruction tokens, both in CLIP's space.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


class CrossAttention(nn.Module):
    """Eq. 1: F_Editedimg = Attn(Q = F_img, K = V = F_ins), in residual pre-norm form."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm_image = nn.LayerNorm(dim)
        self.norm_instruction = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, f_img: Tensor, f_ins: Tensor, ins_padding: Tensor) -> Tensor:
        keys = self.norm_instruction(f_ins)
        update, _ = self.attention(
            self.norm_image(f_img), keys, keys, key_padding_mask=ins_padding, need_weights=False
        )
        return f_img + update


class SelfAttention(nn.Module):
    """Eq. 2: F_imgRegion = SelfAttn(F_Editedimg), then a token-wise feed-forward."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.feed_forward = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        normed = self.norm(x)
        x = x + self.attention(normed, normed, normed, need_weights=False)[0]
        return x + self.feed_forward(x)


class RegionProbability(nn.Module):
    """Eq. 3: P_region = sigmoid(MLP(F_imgRegion)), one probability per patch token."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.mlp(x)).squeeze(-1)


class SemanticProjection(nn.Module):
    """f_sem (Eqs. 4-6): token features (B,N,d) -> one vector in CLIP's joint space (B,d)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.proj(self.norm(tokens).mean(dim=1))


@dataclass
class RegionPrediction:
    p_region: Tensor  # (B, N) in (0, 1)
    f_edited: Tensor  # (B, N, d): F_Editedimg, for the semantic alignment loss


class RegionHead(nn.Module):
    """Everything the optimizer trains: Eqs. 1-3 and f_sem."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.cross_attention = CrossAttention(dim, heads)
        self.self_attention = SelfAttention(dim, heads)
        self.region_probability = RegionProbability(dim)
        self.f_sem = SemanticProjection(dim)

    def forward(self, f_img: Tensor, f_ins: Tensor, ins_padding: Tensor) -> RegionPrediction:
        f_edited = self.cross_attention(f_img, f_ins, ins_padding)
        p_region = self.region_probability(self.self_attention(f_edited))
        return RegionPrediction(p_region=p_region, f_edited=f_edited)
