"""The file format of the feature cache: one safetensors file per prepared shard.

A shard's file stacks its samples' cached features (components/method/features.py) in shard
order, in float16: T_o, T_e (n, d), the generator's conditioning of t_e under its own names
(`prompt`, the token states (n, L, D); `pooled_prompt` (n, P) for SDXL and FLUX), z_src
(n, c, h, w), and the instruction tokens F_ins without their padding, concatenated (tokens, d)
with offsets (n + 1), so a short instruction costs only its own tokens; and a hash of each
sample's three texts (n,), so training can tell a cache of older descriptions. The sample keys,
the shard's counts and the keys of samples whose image was unreadable are in the header. The
empty prompt's conditioning is the same for every sample: one file for the folder (with no
tensors for a generator without classifier-free guidance). Readers memory-map the file and
read one sample's rows at a time.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from components.errors import InputError
from components.method.features import CachedFeatures

FORMAT = "regionedit-features-3"
SHARD_METADATA = "shard"
_DTYPES = {"F16": torch.float16, "F32": torch.float32, "I64": torch.int64}  # a shard's dtypes
STORAGE_DTYPE = torch.float16  # 10 mantissa bits; every cached value is far below its max
STACKED = ("t_o", "t_e", "z_src")  # one row per sample, beside the conditioning
CONDITIONING = ("prompt", "pooled_prompt")  # the names a generator's conditioning may have
UNCONDITIONAL_FILE = "unconditional.safetensors"


class FeaturesError(InputError):
    """The feature cache is missing, stale or unreadable; the message says what to do."""


def shard_tensors(batches: list[CachedFeatures]) -> dict[str, Tensor]:
    """A shard's samples (in order, over several batches) as the tensors of its file."""
    if not batches:  # every image of the shard was unreadable: a file of no samples
        return {"ins_offsets": torch.zeros(1, dtype=torch.int64)}
    tensors = {
        name: _compact(torch.cat([getattr(b, name) for b in batches]), name) for name in STACKED
    }
    for name in batches[0].prompt:
        tensors[name] = _compact(torch.cat([b.prompt[name] for b in batches]), name)
    tokens, lengths = [], []
    for batch in batches:
        for f_ins, padding in zip(batch.f_ins, batch.ins_padding, strict=True):
            length = int((~padding).sum())
            if padding[:length].any():
                raise FeaturesError("instruction padding must be on the right (T5's default)")
            tokens.append(f_ins[:length])
            lengths.append(length)
    tensors["f_ins"] = _compact(torch.cat(tokens), "f_ins")
    tensors["ins_offsets"] = torch.tensor([0, *lengths]).cumsum(0)
    return tensors


def texts_digest(t_o: str, t_ins: str, t_e: str) -> int:
    """64 bits of a hash of a sample's descriptions, as a signed int64 tensor element."""
    digest = hashlib.sha256(f"{t_o}\0{t_ins}\0{t_e}".encode()).digest()
    return int.from_bytes(digest[:8], "little", signed=True)


def write_shard(
    path: Path,
    keys: list[str],
    texts: list[int],
    tensors: dict[str, Tensor],
    counts: dict[str, object],
    unreadable: list[str],
) -> None:
    """Write atomically: the file appears complete or not at all. `texts`: `texts_digest` per
    sample; `unreadable`: the keys of samples skipped for an unreadable image."""
    tensors = tensors | {"texts": torch.tensor(texts, dtype=torch.int64)}
    header = {"keys": keys, "counts": counts}
    if unreadable:  # absent otherwise: a shard of readable images gives the same bytes as ever
        header["unreadable"] = unreadable
    # one metadata entry: safetensors writes several in a per-process order, so the file's
    # bytes (and DVC's hash of the cache) would differ between identical runs
    metadata = {SHARD_METADATA: json.dumps(header, sort_keys=True)}
    _save_atomically({name: t.contiguous() for name, t in tensors.items()}, path, metadata)


def write_unconditional(folder: Path, unconditional: dict[str, Tensor]) -> None:
    tensors = {name: _compact(value, name) for name, value in unconditional.items()}
    _save_atomically(tensors, folder / UNCONDITIONAL_FILE, None)


def read_unconditional(folder: Path) -> dict[str, Tensor]:
    path = folder / UNCONDITIONAL_FILE
    if not path.is_file():
        raise FeaturesError(f"{path}: missing; run `regionedit features` again")
    return load_file(path)


def shard_metadata(handle) -> dict:
    """A shard file's sample keys (in row order), the counts it was written with and, if any,
    the keys of samples skipped for an unreadable image."""
    return json.loads(handle.metadata()[SHARD_METADATA])


def shard_counts(path: Path) -> dict[str, object]:
    """The counts a shard's file was written with (so a reused shard reports the same)."""
    return shard_metadata(MappedSafetensors(path))["counts"]


class MappedSafetensors:
    """A safetensors file memory-mapped with NumPy, read a few rows at a time.

    safetensors' own reader (`safe_open`, 0.8.0) keeps a 28-byte object alive for every tensor
    it returns, for the life of the process: reading a sample's rows that way cost 270 bytes a
    sample, 300 MiB over a loader pass of 940,500 samples. The format is small and documented:
    an 8-byte little-endian header length, a JSON header (each tensor's dtype, shape and byte
    range; `__metadata__`), then the tensors' bytes."""

    def __init__(self, path: Path) -> None:
        self.data = np.memmap(path, dtype=np.uint8, mode="r")
        size = int.from_bytes(self.data[:8].tobytes(), "little")
        header = json.loads(self.data[8 : 8 + size].tobytes())
        self._metadata = header.pop("__metadata__", None) or {}
        end = 8 + size + max((entry["data_offsets"][1] for entry in header.values()), default=0)
        if len(self.data) != end:
            raise ValueError(f"{len(self.data)} bytes where the header describes {end}")
        self.layout = {
            name: (8 + size + entry["data_offsets"][0], entry["shape"], _DTYPES[entry["dtype"]])
            for name, entry in header.items()
        }

    def metadata(self) -> dict[str, str]:
        return self._metadata

    def keys(self) -> list[str]:
        return list(self.layout)

    def rows(self, name: str, first: int, end: int) -> Tensor:
        """Rows first..end-1 of tensor `name` (along its first dimension), copied out."""
        start, shape, dtype = self.layout[name]
        if end == first:  # a shard of no samples: an empty byte range views as no dtype
            return torch.empty(0, *shape[1:], dtype=dtype)
        row = math.prod(shape[1:]) * dtype.itemsize
        raw = np.array(self.data[start + first * row : start + end * row])
        return torch.from_numpy(raw).view(dtype).reshape(end - first, *shape[1:])

    def get_tensor(self, name: str) -> Tensor:
        return self.rows(name, 0, self.layout[name][1][0])


class ShardFeatures:
    """Random access by key to one shard's cached features, memory-mapped."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise FeaturesError(
                f"{path}: no cached features for this shard; run `regionedit features` again"
            )
        try:
            self.handle = MappedSafetensors(path)
            metadata = shard_metadata(self.handle)
            self.row = {key: i for i, key in enumerate(metadata["keys"])}
            self.unreadable = set(metadata.get("unreadable", ()))
            self.offsets = self.handle.get_tensor("ins_offsets").tolist()
            self.texts = self.handle.get_tensor("texts").tolist()
            stored = set(self.handle.keys())
            self.conditioning = [name for name in CONDITIONING if name in stored]
        except Exception as err:  # a cut or garbled header: JSON, NumPy or key errors
            raise FeaturesError(
                f"{path}: unreadable feature file ({err}); delete it and run `regionedit "
                "features` again"
            ) from err
        self.path = path

    def __contains__(self, key: str) -> bool:
        return key in self.row

    def described_as(self, key: str, t_o: str, t_ins: str, t_e: str) -> bool:
        """Whether the sample was cached with these descriptions."""
        return self.texts[self.row[key]] == texts_digest(t_o, t_ins, t_e)

    def sample(self, key: str) -> dict[str, Tensor]:
        """One sample's features: t_o, t_e (d), z_src (c, h, w), f_ins (m, d) and the
        conditioning (prompt (L, D), pooled_prompt (P,) where the generator has one)."""
        if key not in self.row:
            raise FeaturesError(
                f"{self.path}: no cached features for sample {key}; run `regionedit features` "
                "again on the same prepared data and descriptions"
            )
        i = self.row[key]
        rows = (*STACKED, *self.conditioning)
        sample = {name: self.handle.rows(name, i, i + 1)[0] for name in rows}
        sample["f_ins"] = self.handle.rows("f_ins", self.offsets[i], self.offsets[i + 1])
        return sample


def stack_samples(
    samples: list[dict[str, Tensor]], unconditional: dict[str, Tensor]
) -> CachedFeatures:
    """Samples read by `ShardFeatures.sample` as one batch, F_ins right-padded to the longest."""
    longest = max(len(s["f_ins"]) for s in samples)
    f_ins = torch.zeros(len(samples), longest, samples[0]["f_ins"].shape[-1], dtype=STORAGE_DTYPE)
    padding = torch.ones(len(samples), longest, dtype=torch.bool)
    for i, sample in enumerate(samples):
        length = len(sample["f_ins"])
        f_ins[i, :length], padding[i, :length] = sample["f_ins"], False
    return CachedFeatures(
        **{name: torch.stack([s[name] for s in samples]) for name in STACKED},
        prompt={
            name: torch.stack([s[name] for s in samples])
            for name in CONDITIONING
            if name in samples[0]
        },
        f_ins=f_ins,
        ins_padding=padding,
        unconditional=unconditional,
    )


def _compact(tensor: Tensor, name: str) -> Tensor:
    stored = tensor.detach().to("cpu", STORAGE_DTYPE)
    if not torch.isfinite(stored).all():
        raise FeaturesError(
            f"cached feature {name} is not finite in {STORAGE_DTYPE} (largest magnitude "
            f"{tensor.abs().max().item():.3g}); the frozen model's outputs are out of range"
        )
    return stored


def _save_atomically(tensors: dict[str, Tensor], path: Path, metadata: dict | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    save_file(tensors, partial, metadata)
    os.replace(partial, path)
