"""Who writes t_o, t_ins and t_e: one interface, three backends, `build_backend` picks by name.

`template` writes by rule, offline; `transformers` and `vllm` prompt chat models with the same
versioned prompts. Every backend answers in the same strict JSON, so one checker serves all.
"""

from __future__ import annotations

import json

from PIL import Image

from components.config import DescribeConfig, ModelsConfig
from components.describe.checking import Answer, Rejection
from components.describe.errors import DescribeError
from components.describe.interface import Backend, Decoding
from components.describe.prompts import load_prompts
from components.describe.template import VERSION, apply_instruction, write_edit


class TemplateBackend:
    """Rules over the caption's nouns (components/describe/template.py), answered as JSON."""

    name, model, captioner, prompts = "template", VERSION, None, None

    def caption(self, images: list[Image.Image], decoding: Decoding) -> list[Answer]:
        raise DescribeError(
            "the template backend cannot caption images: give a caption (original_description), "
            "or set describe.backend to transformers or vllm"
        )

    def write_edits(self, captions: list[str], decoding: Decoding) -> list[Answer]:
        edits = (write_edit(caption, decoding.seed) for caption in captions)
        return [
            json.dumps({"instruction": e.instruction, "target_description": e.target})
            for e in edits
        ]

    def write_targets(
        self, captions: list[str], instructions: list[str], decoding: Decoding
    ) -> list[Answer]:
        targets = map(apply_instruction, captions, instructions)
        return [
            t if isinstance(t, Rejection) else json.dumps({"target_description": t})
            for t in targets
        ]


def build_backend(cfg: DescribeConfig, models: ModelsConfig) -> Backend:
    """The backend `describe.backend` names; engines are imported only when selected."""
    if cfg.backend == "template":
        return TemplateBackend()
    prompts = load_prompts(cfg.prompt_version)
    if cfg.backend == "transformers":
        from components.describe.transformers_chat import TransformersChat

        return TransformersChat(
            prompts, models.writer, models.captioner, cfg.batch_size, models.trust_remote_code
        )
    from components.describe.vllm_chat import VllmChat

    return VllmChat(prompts, models.writer, models.captioner, models.trust_remote_code)
