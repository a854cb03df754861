"""What a describe backend is: its decoding settings, the `Backend` protocol every backend
meets, and `ChatBackend`, the half the chat engines (transformers_chat.py, vllm_chat.py) share.

Its own module so that the engines and `backends.build_backend`, which imports them only when
selected, both import it and not each other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Protocol

from PIL import Image

from components.describe.checking import Answer
from components.describe.prompts import Message, Prompts


@dataclass(frozen=True)
class Decoding:
    sample: bool  # False: greedy
    seed: int  # seeds sampling, and the template's choice of operation
    temperature: float
    max_new_tokens: int


class Backend(Protocol):
    name: str  # "template" | "transformers" | "vllm"
    model: str  # the instruction writer: a model id or folder, or the template's version
    captioner: str | None  # the captioning MLLM; None: this backend cannot caption images
    prompts: Prompts | None  # None: no prompts (the template backend)

    def caption(self, images: list[Image.Image], decoding: Decoding) -> list[Answer]: ...

    def write_edits(self, captions: list[str], decoding: Decoding) -> list[Answer]: ...

    def write_targets(
        self, captions: list[str], instructions: list[str], decoding: Decoding
    ) -> list[Answer]: ...


class ChatBackend(ABC):
    """Chat models prompted with one prompt version; subclasses run the generation."""

    name: ClassVar[str]

    def __init__(self, prompts: Prompts, writer: str, captioner: str) -> None:
        self.prompts, self.model, self.captioner = prompts, writer, captioner

    def caption(self, images: list[Image.Image], decoding: Decoding) -> list[Answer]:
        conversations = [self.prompts.caption_messages(self.image_part(i)) for i in images]
        return self.generate(conversations, decoding, images)

    def write_edits(self, captions: list[str], decoding: Decoding) -> list[Answer]:
        return self.generate([self.prompts.edit_messages(c) for c in captions], decoding)

    def write_targets(
        self, captions: list[str], instructions: list[str], decoding: Decoding
    ) -> list[Answer]:
        conversations = list(map(self.prompts.target_messages, captions, instructions))
        return self.generate(conversations, decoding)

    @abstractmethod
    def image_part(self, image: Image.Image) -> Message:
        """The image's entry in a user turn, as this engine expects it."""

    @abstractmethod
    def generate(
        self,
        conversations: list[list[Message]],
        decoding: Decoding,
        images: list[Image.Image] | None = None,
    ) -> list[str]:
        """One answer per conversation: by the captioner if `images`, else by the writer."""
