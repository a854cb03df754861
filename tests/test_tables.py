"""Parquet read a row group at a time: every row once, in file order, in bounded batches."""

import pyarrow as pa
import pyarrow.parquet as pq

from components.data.tables import parquet_batches, parquet_rows


def _table(tmp_path, rows: int, row_group: int):
    table = pa.table(
        {"key": [f"k{i:03d}" for i in range(rows)], "n": list(range(rows)), "x": [1.5] * rows}
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=row_group)
    return path, table


def test_batches_cover_every_row_group_in_order_within_the_batch_bound(tmp_path):
    path, table = _table(tmp_path, rows=35, row_group=10)
    assert pq.ParquetFile(path).num_row_groups == 4
    batches = list(parquet_batches(path, ["key", "n"], batch_rows=4))
    assert max(b.num_rows for b in batches) == 4
    assert all(b.schema.names == ["key", "n"] for b in batches)
    assert pa.Table.from_batches(batches).equals(table.select(["key", "n"]))


def test_rows_are_tuples_of_the_asked_columns_in_their_order(tmp_path):
    path, _ = _table(tmp_path, rows=23, row_group=7)
    rows = list(parquet_rows(path, ["n", "key"], batch_rows=5))
    assert rows == [(i, f"k{i:03d}") for i in range(23)]


def test_an_empty_file_gives_no_rows(tmp_path):
    path, _ = _table(tmp_path, rows=0, row_group=10)
    assert list(parquet_rows(path, ["key"])) == []
