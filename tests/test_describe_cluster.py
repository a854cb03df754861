"""The describe flow on a real Dask cluster (started here, on loopback) through prefect-dask:
the same descriptions as the threads runner, every sample described once."""

from __future__ import annotations

import pandas as pd
import pytest
from distributed import LocalCluster

from components.config import DescribeConfig, Params
from components.describe.errors import DescribeError
from flows.describe import run_describe, task_runner
from tests.test_describe_shards import prepare_demo


@pytest.fixture
def tracking(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")


def params(**describe) -> Params:
    return Params(describe=DescribeConfig(shards_per_task=1, task_retries=0, **describe))


@pytest.mark.slow
def test_describe_on_a_dask_cluster_equals_the_threads_runner(tmp_path, tracking, prefect_harness):
    prepared = prepare_demo(tmp_path / "prepared", scenes=3, per_shard=6)
    threads = run_describe(prepared, tmp_path / "threads", params())

    # a TCP scheduler on loopback that the runner reaches by address; its workers share this process
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        on_dask = run_describe(
            prepared,
            tmp_path / "dask",
            params(task_runner="dask", cluster=cluster.scheduler_address),
        )
        ran = {p.name: p.state_counts["memory"] for p in cluster.scheduler.task_prefixes.values()}

    assert ran == {"describe_shards": 4}  # the scheduler ran one task per shard: 24 samples, 6 each
    assert on_dask == threads
    assert on_dask.inputs == on_dask.described + on_dask.rejected == 24
    described = pd.read_parquet(tmp_path / "dask" / "descriptions.parquet")
    manifest = pd.read_parquet(prepared / "manifest.parquet")
    assert list(described["key"]) == list(manifest["key"])  # each sample once, in manifest order
    pd.testing.assert_frame_equal(
        described, pd.read_parquet(tmp_path / "threads" / "descriptions.parquet")
    )


def test_a_cluster_address_needs_a_cluster_runner():
    with pytest.raises(DescribeError, match="task_runner to dask or ray"):
        task_runner(DescribeConfig(cluster="tcp://127.0.0.1:8786"))
