"""`prepare`: records of any source -> WebDataset shards + manifest.parquet + rejected.jsonl."""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing
import os
import sqlite3
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
from components.data.shards import ShardWriter, shard_name

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
MANIFEST_ROW_GROUP = 4096
STATE = "prepare-state.sqlite"  # in OUT while a run is unfinished; a complete run removes it


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
    """The three outputs of a run, written as samples stream past, and the run's state: a SQLite
    file in OUT that holds the pixel digests seen (duplicates are found on disk, so memory stays
    flat in the number of samples), the manifest rows and a checkpoint committed after every
    finished shard. A killed run started again with the same identity resumes from it."""

    def __init__(self, out: Path, samples_per_shard: int, identity: dict[str, object]) -> None:
        self.out = out
        self.state, progress = _open_state(out / STATE, identity)
        self.summary = PrepareSummary()
        self.reasons: Counter[str] = Counter()
        rejected = out / "rejected.jsonl"
        (out / "manifest.parquet").unlink(missing_ok=True)  # written again when the run completes
        if progress is None:
            for stale in (out / "shards").glob("shard-*.tar"):
                stale.unlink()
            rejected.write_bytes(b"")
            shards = 0
        else:  # drop what the killed run wrote after its last checkpoint
            summary = progress["summary"]
            self.reasons.update(summary.pop("rejected_by_reason"))
            self.summary = PrepareSummary(**summary)
            shards = self.summary.shards
            for stale in (out / "shards").glob("shard-*.tar"):
                if int(stale.stem.removeprefix("shard-")) >= shards:
                    stale.unlink()
            with rejected.open("r+b") as handle:
                handle.truncate(progress["rejected_bytes"])
            log.info(
                "resuming %s: %d inputs done, %d finished shards kept",
                out,
                self.summary.inputs,
                shards,
            )
        self.shards = ShardWriter(out / "shards", samples_per_shard, shards)
        self.rejected = rejected.open("ab")

    @property
    def done(self) -> int:
        """Inputs already taken care of: a resumed run skips this many records."""
        return self.summary.inputs

    def accept(self, sample: Sample) -> None:
        """Writes the sample, or rejects it as a duplicate of an earlier one."""
        self.summary.inputs += 1
        added = self.state.execute(
            "INSERT OR IGNORE INTO seen VALUES (?)", (bytes.fromhex(sample.sha256),)
        )
        if added.rowcount == 0:
            self.summary.duplicates += 1
            self._write_rejection(
                Rejection(
                    sample.ref,
                    Reason.DUPLICATE,
                    "same pixels as an earlier sample",
                    duplicate_of=sample.key,
                )
            )
            return
        self.summary.accepted += 1
        members = {
            sample.ext: sample.image,
            "json": json.dumps(
                {"caption": sample.caption, "source": sample.ref},
                ensure_ascii=False,
                sort_keys=True,
            ).encode("utf-8"),
        }
        shard = self.shards.write(sample.key, members)
        self.state.execute(
            "INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                sample.key,
                shard,
                sample.width,
                sample.height,
                sample.caption,
                sample.sha256,
                sample.ref,
            ),
        )
        if self.shards.full:
            self.shards.close()
            self._checkpoint()

    def reject(self, rejection: Rejection) -> None:
        self.summary.inputs += 1
        self.summary.rejected += 1
        self.reasons[str(rejection.reason)] += 1
        log.info("rejected %s: %s (%s)", rejection.ref, rejection.reason, rejection.detail)
        self._write_rejection(rejection)

    def _write_rejection(self, rejection: Rejection) -> None:
        line = json.dumps(rejection.as_json(), sort_keys=True) + "\n"
        self.rejected.write(line.encode("utf-8"))

    def _checkpoint(self) -> None:
        """Commit: the finished shards, the rejections so far and the counts belong together."""
        self.rejected.flush()
        self.summary.shards = self.shards.shards
        self.summary.rejected_by_reason = dict(sorted(self.reasons.items()))
        progress = {"summary": asdict(self.summary), "rejected_bytes": self.rejected.tell()}
        self.state.execute(
            "UPDATE meta SET value = ? WHERE name = 'progress'", (json.dumps(progress),)
        )
        self.state.commit()

    def finish(self) -> PrepareSummary:
        """Close the last shard, write the manifest and drop the state: the run is complete."""
        self.shards.close()
        self._checkpoint()
        self.rejected.close()
        rows = self.state.execute(
            f"SELECT {', '.join(MANIFEST_SCHEMA.names)} FROM rows ORDER BY rowid"
        )
        with pq.ParquetWriter(self.out / "manifest.parquet", MANIFEST_SCHEMA) as manifest:
            while batch := rows.fetchmany(MANIFEST_ROW_GROUP):
                columns = zip(*batch, strict=True)
                manifest.write_table(
                    pa.Table.from_arrays(
                        [
                            pa.array(column, field.type)
                            for column, field in zip(columns, MANIFEST_SCHEMA, strict=True)
                        ],
                        schema=MANIFEST_SCHEMA,
                    )
                )
        self.state.close()
        (self.out / STATE).unlink()
        return self.summary

    def close(self) -> None:
        """Leave the outputs as they are after the last checkpoint: a rerun resumes there."""
        self.shards.close()
        self.rejected.close()
        self.state.close()


def _open_state(path: Path, identity: dict[str, object]) -> tuple[sqlite3.Connection, dict | None]:
    """The run's state, and the progress of a killed run of the same identity (None: start)."""
    settings = json.dumps(identity, sort_keys=True)
    if path.is_file():
        try:
            state = sqlite3.connect(path)
            stored = dict(state.execute("SELECT name, value FROM meta").fetchall())
            progress = json.loads(stored.get("progress", "null"))
            if stored.get("identity") != settings:
                log.info("%s: from a run with other settings; starting over", path)
            elif not _outputs_intact(path.parent, progress):
                log.warning("%s: outputs of its last checkpoint are missing; starting over", path)
            else:
                return state, progress
            state.close()
        except sqlite3.DatabaseError as err:
            log.warning("%s: unreadable (%s); starting over", path, err)
        path.unlink()
    state = sqlite3.connect(path)
    state.executescript(
        """
        PRAGMA journal_mode = WAL;
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE seen (digest BLOB PRIMARY KEY) WITHOUT ROWID;
        CREATE TABLE rows (key TEXT, shard TEXT, width INTEGER, height INTEGER, caption TEXT,
                           sha256 TEXT, source TEXT);
        """
    )
    state.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [
            ("identity", settings),
            ("progress", json.dumps({"summary": asdict(PrepareSummary()), "rejected_bytes": 0})),
        ],
    )
    state.commit()
    return state, None


def _outputs_intact(out: Path, progress: dict) -> bool:
    """The finished shards and the rejections a checkpoint counts on are all still there."""
    rejected = out / "rejected.jsonl"
    finished = (out / "shards" / shard_name(i) for i in range(progress["summary"]["shards"]))
    return (
        rejected.is_file()
        and rejected.stat().st_size >= progress["rejected_bytes"]
        and all(shard.is_file() for shard in finished)
    )


def prepare_dataset(
    records: Iterable[SourceRecord],
    out: Path,
    limits: ImageLimits,
    samples_per_shard: int,
    workers: int,
    metrics: Path | None = None,
    progress: bool = True,
    source: dict[str, object] | None = None,
) -> PrepareSummary:
    """Stream records through checks and conversion into `out`; returns (and saves) the counts.

    `source` says what the records are (the source and the settings that read it). A run killed
    part-way and started again with the same source, limits and samples per shard skips the
    inputs its finished shards hold and writes the same bytes as a run never killed, whatever
    the worker count.
    """
    out.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    identity = {
        "source": source or {},
        "limits": asdict(limits),
        "samples_per_shard": samples_per_shard,
    }
    outputs = _Outputs(out, samples_per_shard, identity)
    try:
        todo = itertools.islice(records, outputs.done, None)
        results = ordered_map(partial(process_record, limits=limits), todo, workers)
        for result in tqdm(
            results, desc="prepare", unit="img", initial=outputs.done, disable=not progress
        ):
            if isinstance(result, Rejection):
                outputs.reject(result)
            else:
                outputs.accept(result)
        summary = outputs.finish()
    finally:
        outputs.close()
    metrics = metrics or out / "prepare_metrics.json"
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps(asdict(summary), indent=2) + "\n", encoding="utf-8")
    log.info(summary.line())
    return summary
