"""`prepare`: records of any source -> WebDataset shards + manifest.parquet + rejected.jsonl."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from components.data.images import (
    ImageLimits,
    InputRejected,
    decode_caption,
    decode_image,
    encode_png,
)
from components.data.records import Reason, Rejection, Sample, SourceRecord
from components.data.shards import ShardWriter

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("shard", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("caption", pa.string()),
        ("sha256", pa.string()),
        ("source", pa.string()),
    ]
)
KEY_HEX_DIGITS = 20  # 80 bits of the pixel hash: collisions stay negligible at 5M samples


@dataclass
class PrepareSummary:
    """Counts of one `prepare` run; inputs = accepted + rejected + duplicates, always."""

    inputs: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    shards: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"inputs {self.inputs} · accepted {self.accepted} · "
            f"rejected {self.rejected} · duplicates {self.duplicates}"
        )


def process_record(record: SourceRecord, limits: ImageLimits) -> Sample | Rejection:
    """Read, check and convert one input. Runs in a worker process; never raises for bad data."""
    try:
        if record.error is not None:
            raise InputRejected(*record.error)
        caption = decode_caption(record.caption)
        data = record.data if record.data is not None else _read(record.path)
        decoded = decode_image(data, limits)
        stored = ("jpg", data) if decoded.keep_source_bytes else ("png", encode_png(decoded.rgb))
    except InputRejected as rejected:
        return Rejection(record.ref, rejected.reason, rejected.detail)
    except Exception as err:  # untrusted bytes: a decoder failing on one input must not stop a run
        return Rejection(record.ref, Reason.CORRUPT, f"{type(err).__name__}: {err}")
    digest = decoded.sha256
    return Sample(
        ref=record.ref,
        key=digest[:KEY_HEX_DIGITS],
        ext=stored[0],
        image=stored[1],
        width=decoded.rgb.width,
        height=decoded.rgb.height,
        caption=caption,
        sha256=digest,
    )


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise InputRejected(Reason.MISSING_IMAGE, "no such file") from None
    except OSError as err:  # the detail stays free of machine-specific paths: the ref names it
        raise InputRejected(Reason.UNREADABLE, err.strerror or type(err).__name__) from None


T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """map() over worker processes, in input order, with a bounded number of items in flight.

    A worker that dies (killed for memory, say) raises BrokenProcessPool instead of hanging.
    """
    if workers == 1:
        yield from map(fn, items)
        return
    in_flight = 8 * workers  # bounds memory: the source is read only this far ahead
    spawn = multiprocessing.get_context("spawn")  # no fork of a threaded (Prefect) process
    with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class _Outputs:
    """The three outputs of a run, each written as samples stream past."""

    def __init__(self, out: Path, samples_per_shard: int) -> None:
        for stale in (out / "shards").glob("shard-*.tar"):
            stale.unlink()
        self.shards = ShardWriter(out / "shards", samples_per_shard)
        self.manifest = pq.ParquetWriter(out / "manifest.parquet", MANIFEST_SCHEMA)
        self.rejected = (out / "rejected.jsonl").open("w", encoding="utf-8")
        self.rows: list[dict] = []

    def accept(self, sample: Sample) -> None:
        members = {
            sample.ext: sample.image,
            "json": json.dumps(
                {"caption": sample.caption, "source": sample.ref},
                ensure_ascii=False,
                sort_keys=True,
            ).encode("utf-8"),
        }
        shard = self.shards.write(sample.key, members)
        self.rows.append(
            {
                "key": sample.key,
                "shard": shard,
                "width": sample.width,
                "height": sample.height,
                "caption": sample.caption,
                "sha256": sample.sha256,
                "source": sample.ref,
            }
        )
        if len(self.rows) == 4096:
            self._flush_rows()

    def reject(self, rejection: Rejection) -> None:
        self.rejected.write(json.dumps(rejection.as_json(), sort_keys=True) + "\n")

    def _flush_rows(self) -> None:
        self.manifest.write_table(pa.Table.from_pylist(self.rows, schema=MANIFEST_SCHEMA))
        self.rows = []

    def close(self) -> None:
        if self.rows:
            self._flush_rows()
        self.manifest.close()
        self.rejected.close()
        self.shards.close()


def prepare_dataset(
    records: Iterable[SourceRecord],
    out: Path,
    limits: ImageLimits,
    samples_per_shard: int,
    workers: int,
    metrics: Path | None = None,
    progress: bool = True,
) -> PrepareSummary:
    """Stream records through checks and conversion into `out`; returns (and saves) the counts."""
    out.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    summary, reasons = PrepareSummary(), Counter()
    seen: set[bytes] = set()  # 32-byte digests: about 70 bytes of memory per accepted sample
    outputs = _Outputs(out, samples_per_shard)
    try:
        results = ordered_map(partial(process_record, limits=limits), records, workers)
        for result in tqdm(results, desc="prepare", unit="img", disable=not progress):
            summary.inputs += 1
            if isinstance(result, Rejection):
                summary.rejected += 1
                reasons[str(result.reason)] += 1
                log.info("rejected %s: %s (%s)", result.ref, result.reason, result.detail)
                outputs.reject(result)
            elif (digest := bytes.fromhex(result.sha256)) in seen:
                summary.duplicates += 1
                outputs.reject(
                    Rejection(
                        result.ref,
                        Reason.DUPLICATE,
                        "same pixels as an earlier sample",
                        duplicate_of=result.key,
                    )
                )
            else:
                seen.add(digest)
                summary.accepted += 1
                outputs.accept(result)
    finally:
        outputs.close()
    summary.shards = outputs.shards.shards
    summary.rejected_by_reason = dict(sorted(reasons.items()))
    metrics = metrics or out / "prepare_metrics.json"
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps(asdict(summary), indent=2) + "\n", encoding="utf-8")
    log.info(summary.line())
    return summary
