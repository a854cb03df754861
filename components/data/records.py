"""What flows through `prepare`: an input record, and the sample or rejection it becomes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Why an input was not taken. Every rejection carries one of these and a detail."""

    UNREADABLE = "unreadable"  # the file or record could not be read at all
    EMPTY_FILE = "empty_file"  # zero bytes
    NOT_AN_IMAGE = "not_an_image"  # no image decoder recognises the bytes
    TRUNCATED = "truncated"  # the header parsed but the pixel data ends early
    CORRUPT = "corrupt"  # the header parsed but the pixel data is damaged
    TOO_SMALL = "too_small"  # shorter side under prepare.min_side
    TOO_LARGE = "too_large"  # more pixels than prepare.max_pixels; never decoded
    MISSING_IMAGE = "missing_image"  # a caption without an image
    MISSING_CAPTION = "missing_caption"  # an image without a caption
    EMPTY_CAPTION = "empty_caption"  # a caption of only whitespace
    CAPTION_NOT_UTF8 = "caption_not_utf8"  # caption bytes are not valid UTF-8
    DUPLICATE = "duplicate"  # same decoded pixels as an earlier accepted sample


@dataclass(frozen=True)
class SourceRecord:
    """One input: a reference back into the source, its image (bytes or a path) and caption."""

    ref: str  # "<kind>:<where in the source>", stable across machines
    caption: str | bytes | None
    data: bytes | None = None
    path: str | None = None  # read by the worker, so file I/O runs in parallel too
    error: tuple[Reason, str] | None = None  # the source already knows this input is bad


@dataclass(frozen=True)
class Sample:
    """An accepted input, ready to be written to a shard."""

    ref: str
    key: str
    ext: str  # "jpg" (source JPEG kept byte for byte) or "png" (converted pixels)
    image: bytes
    width: int
    height: int
    caption: str
    sha256: str  # of the decoded RGB pixels, row-major, 8 bits per channel


@dataclass(frozen=True)
class Rejection:
    """An input not taken, with the reason a person can act on."""

    ref: str
    reason: Reason
    detail: str
    duplicate_of: str | None = None

    def as_json(self) -> dict[str, str]:
        row = {"source": self.ref, "reason": str(self.reason), "detail": self.detail}
        if self.duplicate_of is not None:
            row["duplicate_of"] = self.duplicate_of
        return row
