"""WebDataset tar shards: written byte-for-byte reproducibly (fixed names, times and owners), and
read back so that damage costs samples, not the run.

`describe`, `features` and training read shards through `shard_images`: a tar that ends early
or breaks off in a corrupt header costs the samples past that point, and an image that does not
decode costs that sample only. Each stage logs, skips and counts such a sample.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.tar"


class ShardWriter:
    """Writes samples as KEY.<ext> members, `samples_per_shard` samples per tar, after the
    `shards` finished ones already in `directory` (a resumed run's)."""

    def __init__(self, directory: Path, samples_per_shard: int, shards: int = 0) -> None:
        self.directory = directory
        self.samples_per_shard = samples_per_shard
        self.shards = shards
        self._tar: tarfile.TarFile | None = None
        self._in_shard = 0
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def full(self) -> bool:
        """The open shard holds `samples_per_shard` samples: close() finishes it."""
        return self._tar is not None and self._in_shard == self.samples_per_shard

    def write(self, key: str, members: dict[str, bytes]) -> str:
        """Add one sample; returns the name of the shard that holds it."""
        if self._tar is None or self._in_shard == self.samples_per_shard:
            self._open_next()
        for ext, payload in members.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mode, info.mtime = len(payload), 0o644, 0
            self._tar.addfile(info, io.BytesIO(payload))
        self._in_shard += 1
        return shard_name(self.shards - 1)

    def _open_next(self) -> None:
        self.close()
        path = self.directory / shard_name(self.shards)
        # kept open across write() calls; close() and __exit__ end it
        self._tar = tarfile.open(path, mode="w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115
        self.shards += 1
        self._in_shard = 0

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


IMAGE_EXTENSIONS = ("jpg", "png")


class UnreadableImage(Exception):
    """A sample's image that its shard does not give, or that does not decode."""


@dataclass(frozen=True)
class ShardImage:
    """One wanted sample of a shard: its encoded image, or why the shard does not give it."""

    key: str
    encoded: bytes | None
    problem: str = ""

    @property
    def data(self) -> bytes:
        if self.encoded is None:
            raise UnreadableImage(self.problem)
        return self.encoded


def shard_images(shard: Path, keys: Iterable[str]) -> Iterator[ShardImage]:
    """The image of each of `keys`, streamed in tar order (only wanted members are read), then
    each key the tar did not give, in the order of `keys`, with the reason: every key once."""
    wanted = dict.fromkeys(keys)
    problem = "no image in the shard"
    try:
        with tarfile.open(shard) as tar:
            for member in tar:
                key, _, ext = member.name.rpartition(".")
                if key in wanted and ext in IMAGE_EXTENSIONS:
                    data = tar.extractfile(member).read()
                    del wanted[key]
                    yield ShardImage(key, data)
    except (tarfile.TarError, EOFError) as err:  # a truncated or corrupt tar, met mid-way
        problem = f"the shard breaks off before its image ({type(err).__name__}: {err})"
    for key in wanted:
        yield ShardImage(key, None, problem)
