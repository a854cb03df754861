"""The `vllm` backend: the same prompts through vLLM's offline `LLM.chat`, an optional extra.

vLLM schedules a whole list of conversations itself (continuous batching), so describe.batch_size
does not apply here. Untested on the CPU-only machines of this project: it needs a GPU.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from components.describe.errors import DescribeError
from components.describe.interface import ChatBackend, Decoding
from components.describe.prompts import Message, Prompts

try:
    from vllm import LLM, SamplingParams
except ImportError as err:
    raise DescribeError(
        "describe.backend 'vllm' needs vLLM, an optional extra: pip install -e '.[vllm]' on a "
        "machine with a GPU, or set describe.backend to transformers"
    ) from err

GPU_MEMORY_SHARE = 0.45  # writer and captioner engines fit on one GPU side by side


class VllmChat(ChatBackend):
    name = "vllm"

    def __init__(
        self, prompts: Prompts, writer: str, captioner: str, trust_remote_code: bool = False
    ) -> None:
        super().__init__(prompts, writer, captioner)
        self.trust_remote_code = trust_remote_code
        self._engines: dict[str, Any] = {}

    def image_part(self, image: Image.Image) -> Message:
        return {"type": "image_pil", "image_pil": image}

    def generate(
        self,
        conversations: list[list[Message]],
        decoding: Decoding,
        images: list[Image.Image] | None = None,
    ) -> list[str]:
        engine = self._engine(self.captioner if images is not None else self.model)
        sampling = SamplingParams(
            temperature=decoding.temperature if decoding.sample else 0.0,
            max_tokens=decoding.max_new_tokens,
            seed=decoding.seed,
        )
        outputs = engine.chat(conversations, sampling, use_tqdm=False)
        return [output.outputs[0].text for output in outputs]

    def _engine(self, name: str) -> Any:
        if name not in self._engines:
            self._engines[name] = LLM(
                model=name,
                trust_remote_code=self.trust_remote_code,
                gpu_memory_utilization=GPU_MEMORY_SHARE,
            )
        return self._engines[name]
