"""The parts of a describe run -> descriptions.parquet + rejected.jsonl + the counts.

Parts are read in manifest order, so the output has one row per input sample in manifest
order, whatever order the shards finished in. Parts of other runs are removed afterwards:
the output folder holds exactly what this run's settings produced.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from components.describe.errors import DescribeError
from components.describe.shards import PART_SCHEMA, ShardWork, Status

DESCRIPTION_COLUMNS = [
    "key",
    "shard",
    "t_o",
    "t_ins",
    "t_e",
    "t_o_source",
    "backend",
    "model",
    "prompt_version",
    "attempts",
    "status",
]
DESCRIPTIONS_SCHEMA = pa.schema([PART_SCHEMA.field(name) for name in DESCRIPTION_COLUMNS])
REJECTED_COLUMNS = ["key", "shard", "stage", "reason", "detail", "attempts", "answer"]


@dataclass
class DescribeSummary:
    """Counts of one `describe` run; inputs = described + rejected, always."""

    inputs: int = 0
    described: int = 0
    rejected: int = 0
    shards: int = 0
    captioned: int = 0  # t_o written by the captioning MLLM
    retried: int = 0  # described, but only after a rejected answer
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return f"inputs {self.inputs} · described {self.described} · rejected {self.rejected}"


def merge_parts(out: Path, works: list[ShardWork], metrics: Path | None = None) -> DescribeSummary:
    """Join the parts of `works` (all present) into `out`; returns (and saves) the counts."""
    parts = out / "parts"
    summary, reasons = DescribeSummary(shards=len(works)), Counter()
    descriptions, rejected = out / ".descriptions.parquet.tmp", out / ".rejected.jsonl.tmp"
    with (
        pq.ParquetWriter(descriptions, DESCRIPTIONS_SCHEMA) as writer,
        rejected.open("w", encoding="utf-8") as rejections,
    ):
        for work in works:
            table = pq.read_table(parts / work.part, schema=PART_SCHEMA)
            if table.num_rows != work.samples:
                raise DescribeError(
                    f"{parts / work.part}: {table.num_rows} rows for the {work.samples} samples "
                    f"of {work.shard}; delete it and run describe again"
                )
            writer.write_table(table.select(DESCRIPTION_COLUMNS))
            ok = pc.equal(table["status"], Status.OK.value)
            bad = table.filter(pc.invert(ok)).select(REJECTED_COLUMNS).to_pylist()
            for row in bad:
                rejections.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            reasons.update(row["reason"] for row in bad)
            described = table.filter(ok)
            answers_needed = pc.add(pc.equal(described["t_o_source"], "captioner").cast("int32"), 1)
            summary.inputs += table.num_rows
            summary.described += described.num_rows
            summary.rejected += len(bad)
            summary.captioned += pc.sum(pc.equal(table["t_o_source"], "captioner")).as_py() or 0
            retried = pc.greater(described["attempts"], answers_needed)
            summary.retried += pc.sum(retried).as_py() or 0
    os.replace(descriptions, out / "descriptions.parquet")
    os.replace(rejected, out / "rejected.jsonl")
    _remove_other_parts(parts, {work.part for work in works})
    summary.rejected_by_reason = dict(sorted(reasons.items()))
    metrics = metrics or out / "describe_metrics.json"
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps(asdict(summary), indent=2) + "\n", encoding="utf-8")
    return summary


def _remove_other_parts(parts: Path, keep: set[str]) -> None:
    """Parts of earlier settings, and temporary files of killed runs."""
    for path in parts.glob("*"):
        if path.name not in keep and path.is_file():
            path.unlink()
