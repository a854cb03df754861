"""The frozen encoders (DESIGN §4): CLIP for T_o, T_e, I and F; a T5 encoder for F_ins.

All of them are frozen and kept in eval mode here, in one place. Image inputs are pixels in
[0, 1]; the CLIP preprocessing (resize, normalise) is done with differentiable ops so that a
gradient can flow from a loss on an edited image back to the mask that composed it.
"""

from __future__ import annotations

import math

import open_clip
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.models.loading import freeze

FIXED_PROJECTION_SEED = 0


class FrozenEncoders(nn.Module):
    """CLIP text/image embeddings and patch tokens, and instruction tokens, all in CLIP's space."""

    def __init__(
        self,
        clip: nn.Module,
        clip_tokenizer,
        t5_tokenizer,
        t5_encoder: nn.Module,
        instruction_tokens: int,
    ) -> None:
        super().__init__()
        self.clip = freeze(clip)
        self.t5_encoder = freeze(t5_encoder)
        self.clip_tokenizer, self.t5_tokenizer = clip_tokenizer, t5_tokenizer
        self.instruction_tokens = instruction_tokens
        preprocess = open_clip.get_model_preprocess_cfg(clip)
        size = preprocess["size"]
        self.image_size = (size, size) if isinstance(size, int) else tuple(size)
        self.register_buffer("mean", torch.tensor(preprocess["mean"]).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(preprocess["std"]).view(1, 3, 1, 1), False)
        self.dim = clip.visual.output_dim
        self.register_buffer(
            "instruction_projection", _fixed_projection(t5_encoder.config.d_model, self.dim), False
        )

    def train(self, mode: bool = True) -> FrozenEncoders:
        return super().train(False)  # frozen parts never switch to training behaviour

    @property
    def grid(self) -> int:
        """Side of the patch grid: sqrt(N)."""
        patch = self.clip.visual.patch_size
        return self.image_size[0] // (patch[0] if isinstance(patch, tuple) else patch)

    def text(self, texts: list[str]) -> Tensor:
        """T: projected, pooled CLIP text embeddings, unit length, (B, d)."""
        tokens = self.clip_tokenizer(texts).to(self.mean.device)
        return F.normalize(self.clip.encode_text(tokens), dim=-1)

    def image(self, pixels: Tensor) -> tuple[Tensor, Tensor]:
        """I (B, d), unit length, and F (B, N, d): patch tokens through ln_post and proj."""
        x = F.interpolate(
            pixels, size=self.image_size, mode="bicubic", antialias=True, align_corners=False
        )
        visual = self.clip.visual
        visual.output_tokens = True
        pooled, tokens = visual((x - self.mean) / self.std)
        if getattr(visual, "final_ln_after_pool", False):
            tokens = visual.ln_post(tokens)  # this model normed only the pooled token
        return F.normalize(pooled, dim=-1), tokens @ visual.proj

    def instruction(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """F_ins (B, M, d) in CLIP's space, and the padding mask (B, M), True = padding."""
        batch = self.t5_tokenizer(
            texts,
            padding="longest",
            truncation=True,
            max_length=self.instruction_tokens,
            return_tensors="pt",
        )
        batch = batch.to(self.mean.device)
        states = self.t5_encoder(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask
        ).last_hidden_state
        return states @ self.instruction_projection, batch.attention_mask == 0


def _fixed_projection(d_in: int, d_out: int) -> Tensor:
    """The only glue between encoders of different widths (tiny models): a seeded Gaussian
    matrix scaled by 1/sqrt(d_in), never trained. The paper's encoders share d = 768: identity."""
    if d_in == d_out:
        return torch.eye(d_in)
    generator = torch.Generator().manual_seed(FIXED_PROJECTION_SEED)
    return torch.randn(d_in, d_out, generator=generator) / math.sqrt(d_in)
