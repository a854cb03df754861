"""The `transformers` backend: batched `generate` with left padding, greedy or seeded sampling.

Models load through components/models/loading.py only, on first use: a run whose samples all
have captions never loads the captioner.
"""

from __future__ import annotations

import threading
from typing import Any

import torch
from PIL import Image
from transformers import PreTrainedModel

from components.describe.errors import DescribeError
from components.describe.interface import ChatBackend, Decoding
from components.describe.prompts import Message, Prompts
from components.models.loading import (
    ModelLoadError,
    checked_folder,
    freeze,
    load_chat_model,
    local_folder,
)


class TransformersChat(ChatBackend):
    name = "transformers"

    def __init__(
        self,
        prompts: Prompts,
        writer: str,
        captioner: str,
        batch_size: int,
        trust_remote_code: bool = False,
    ) -> None:
        super().__init__(prompts, writer, captioner)
        for name in (writer, captioner):  # a missing zoo fails here, not in every shard task
            if (folder := local_folder(name)) is not None:
                try:
                    checked_folder(folder)
                except ModelLoadError as err:
                    raise DescribeError(str(err)) from err
        self.batch_size = batch_size
        self.trust_remote_code = trust_remote_code
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self._loaded: dict[bool, tuple[Any, PreTrainedModel]] = {}
        # one copy of each model per process: concurrent shard tasks take turns on it, and the
        # global torch seed set before each generate() must not change under another thread
        self._lock = threading.Lock()

    def image_part(self, image: Image.Image) -> Message:
        return {"type": "image"}  # the processor receives the pixels beside the text

    def generate(
        self,
        conversations: list[list[Message]],
        decoding: Decoding,
        images: list[Image.Image] | None = None,
    ) -> list[str]:
        answers: list[str] = []
        with self._lock:
            processor, model = self._model(vision=images is not None)
            for start in range(0, len(conversations), self.batch_size):
                chunk = conversations[start : start + self.batch_size]
                texts = [
                    processor.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
                    for c in chunk
                ]
                pixels = {} if images is None else {"images": images[start : start + len(chunk)]}
                inputs = processor(text=texts, padding=True, return_tensors="pt", **pixels)
                inputs = inputs.to(self.device)
                sampling = {"temperature": decoding.temperature} if decoding.sample else {}
                torch.manual_seed(decoding.seed)
                output = model.generate(
                    **inputs,
                    do_sample=decoding.sample,
                    max_new_tokens=decoding.max_new_tokens,
                    **sampling,
                )
                new_tokens = output[:, inputs["input_ids"].shape[1] :]
                answers += processor.batch_decode(new_tokens, skip_special_tokens=True)
        return answers

    def _model(self, vision: bool) -> tuple[Any, PreTrainedModel]:
        if vision not in self._loaded:
            name = self.captioner if vision else self.model
            processor, model = load_chat_model(name, self.trust_remote_code, vision=vision)
            # left padding: every row of a batch continues from its own last prompt token
            (processor.tokenizer if vision else processor).padding_side = "left"
            self._loaded[vision] = (processor, freeze(model).to(self.device))
        return self._loaded[vision]
