"""Versioned prompts: components/describe/prompts/<version>/{system,caption,edit,target}.txt.

A version is never edited once outputs depend on it; a new wording is a new folder. The digest
of the files is part of every cache key anyway, so an edited version cannot reuse stale results.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from components.describe.errors import DescribeError

PROMPTS = Path(__file__).with_name("prompts")
FILES = ("system", "caption", "edit", "target")

Message = dict[str, object]


@dataclass(frozen=True)
class Prompts:
    """One prompt version: chat messages for captioning, writing edits and writing targets."""

    version: str
    system: str
    caption: str
    edit: Template  # $caption
    target: Template  # $caption, $instruction
    digest: str  # sha256 of the files, in FILES order

    def caption_messages(self, image_part: Message) -> list[Message]:
        """`image_part` is how the engine wants the image inside the user turn."""
        content = [image_part, {"type": "text", "text": self.caption}]
        return [_system(self.system), {"role": "user", "content": content}]

    def edit_messages(self, caption: str) -> list[Message]:
        return [_system(self.system), _user(self.edit.substitute(caption=caption))]

    def target_messages(self, caption: str, instruction: str) -> list[Message]:
        text = self.target.substitute(caption=caption, instruction=instruction)
        return [_system(self.system), _user(text)]


def load_prompts(version: str) -> Prompts:
    """The prompts of `version`; a missing or incomplete version names what exists."""
    folder = PROMPTS / version
    available = sorted(p.name for p in PROMPTS.iterdir() if p.is_dir())
    if not re.fullmatch(r"[\w.-]+", version) or not folder.is_dir():
        raise DescribeError(
            f"describe.prompt_version {version!r}: no such prompt folder in {PROMPTS} "
            f"(available: {', '.join(available)})"
        )
    missing = [name for name in FILES if not (folder / f"{name}.txt").is_file()]
    if missing:
        raise DescribeError(f"{folder}: missing prompt files {', '.join(missing)}.txt")
    texts = {name: (folder / f"{name}.txt").read_text(encoding="utf-8").strip() for name in FILES}
    digest = hashlib.sha256("\0".join(texts[name] for name in FILES).encode()).hexdigest()
    return Prompts(
        version=version,
        system=texts["system"],
        caption=texts["caption"],
        edit=Template(texts["edit"]),
        target=Template(texts["target"]),
        digest=digest,
    )


def _system(text: str) -> Message:
    return {"role": "system", "content": text}


def _user(text: str) -> Message:
    return {"role": "user", "content": text}
