"""The learnable region head (paper §3.2): where an instruction should act on an image.

F_img (B,N,d) are CLIP patch tokens, F_ins (B,M,d) instruction tokens, both in CLIP's space.
Two forms of Eqs. 1-3, chosen by `method.head`:
- `paper`: exactly as the equations write them: single-head softmax attention with d x d
  projections W_Q, W_K, W_V and no output projection, no residual, no norm, no feed-forward;
  then a token-wise MLP and a sigmoid.
- `residual`: the same three steps as pre-norm transformer blocks: multi-head attention with
  residual connections, a 4d feed-forward after the self-attention, a norm before the MLP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HeadForm = Literal["paper", "residual"]


class SoftmaxAttention(nn.Module):
    """Eqs. 1-2 as written: Softmax(Q K^T / sqrt(d)) V with Q = X W_Q, K = Y W_K, V = Y W_V."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w_q = nn.Linear(dim, dim, bias=False)
        self.w_k = nn.Linear(dim, dim, bias=False)
        self.w_v = nn.Linear(dim, dim, bias=False)

    def forward(self, x: Tensor, y: Tensor, y_padding: Tensor | None = None) -> Tensor:
        attend = None if y_padding is None else ~y_padding[:, None, :]  # (B, 1, M), True = key
        return F.scaled_dot_product_attention(
            self.w_q(x), self.w_k(y), self.w_v(y), attn_mask=attend
        )


class PaperCrossAttention(nn.Module):
    """Eq. 1: F_Editedimg = Softmax(F_img W_Q (F_ins W_K)^T / sqrt(d)) F_ins W_V."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.attention = SoftmaxAttention(dim)

    def forward(self, f_img: Tensor, f_ins: Tensor, ins_padding: Tensor) -> Tensor:
        return self.attention(f_img, f_ins, ins_padding)


class PaperSelfAttention(nn.Module):
    """Eq. 2: F_imgRegion = Softmax(Q^S K^S^T / sqrt(d)) V^S over F_Editedimg."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.attention = SoftmaxAttention(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.attention(x, x)


class ResidualCrossAttention(nn.Module):
    """Eq. 1 in residual pre-norm form: F_img + MultiHeadAttn(Q = F_img, K = V = F_ins)."""

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


class ResidualSelfAttention(nn.Module):
    """Eq. 2 in residual pre-norm form, then a token-wise feed-forward block."""

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
    """Eq. 3: P_region = sigmoid(MLP(F_imgRegion)), one probability per patch token. The MLP's
    depth and activation are not in the paper: one hidden layer of width d, GELU (assumed)."""

    def __init__(self, dim: int, norm: bool) -> None:
        super().__init__()
        layers = [nn.LayerNorm(dim)] if norm else []
        self.mlp = nn.Sequential(*layers, nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 1))

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
    """Everything the optimizer trains: Eqs. 1-3 and f_sem. `heads` is the residual form's
    attention heads; the paper's form is single-head by its equations."""

    def __init__(self, dim: int, heads: int, form: HeadForm) -> None:
        super().__init__()
        if form == "paper":
            self.cross_attention = PaperCrossAttention(dim)
            self.self_attention = PaperSelfAttention(dim)
        else:
            self.cross_attention = ResidualCrossAttention(dim, heads)
            self.self_attention = ResidualSelfAttention(dim, heads)
        self.region_probability = RegionProbability(dim, norm=form == "residual")
        self.f_sem = SemanticProjection(dim)

    def forward(self, f_img: Tensor, f_ins: Tensor, ins_padding: Tensor) -> RegionPrediction:
        f_edited = self.cross_attention(f_img, f_ins, ins_padding)
        p_region = self.region_probability(self.self_attention(f_edited))
        return RegionPrediction(p_region=p_region, f_edited=f_edited)
