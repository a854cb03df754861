"""Prefect flow for the `describe` stage: one task per batch of shards, then one merge.

Tasks write one part file per shard (components/describe/shards.py), so a rerun skips finished
shards and a failed or killed run resumes. The task runner is describe.task_runner: threads in
one process by default; Dask or Ray (prefect-dask / prefect-ray, optional) on the cluster at
describe.cluster, whose workers must see `data` and `out` at the same paths (a shared filesystem).
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import mlflow
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from tqdm import tqdm

from components.config import DescribeConfig, Params
from components.describe.describer import Describer
from components.describe.errors import DescribeError
from components.describe.merge import DescribeSummary, merge_parts
from components.describe.shards import ShardResult, ShardWork, describe_shard, plan_shards
from components.tracking import configure_tracking

IN_FLIGHT = 64  # describe tasks submitted at a time: enough to keep a cluster busy

_describers: dict[tuple, Describer] = {}
_describers_lock = threading.Lock()


def describer_for(params: Params) -> Describer:
    """One Describer per process and settings, so every task of a worker shares its models."""
    key = (params.describe, params.models, params.seed)
    with _describers_lock:
        if key not in _describers:
            _describers[key] = Describer.from_params(params)
        return _describers[key]


@task(name="describe-shards", cache_policy=NO_CACHE, retry_delay_seconds=5)
def describe_shards(
    works: list[ShardWork], data: Path, parts: Path, params: Params
) -> list[ShardResult]:
    describer = describer_for(params)
    return [describe_shard(work, data, parts, describer) for work in works]


@flow(name="describe")
def describe_flow(
    data: Path,
    out: Path,
    params: Params,
    metrics: Path | None = None,
    limit: int | None = None,
) -> DescribeSummary:
    """t_o, t_ins, t_e for the prepared samples in `data` -> descriptions.parquet in `out`."""
    logger = get_run_logger()
    describer = describer_for(params)  # a bad backend or prompt version fails before any task
    works = plan_shards(data / "manifest.parquet", describer.identity(), limit)
    configure_tracking(params.tracking)
    with mlflow.start_run(run_name="describe"):
        mlflow.log_params({f"describe.{k}": v for k, v in params.describe.model_dump().items()})
        backend = describer.backend
        mlflow.set_tags(
            {"model": backend.model, "captioner": str(backend.captioner), "limit": str(limit)}
        )
        start = time.perf_counter()
        results = _describe_all(works, data, out / "parts", params)
        seconds = time.perf_counter() - start
        summary = merge_parts(out, works, metrics)
        generated = sum(r.samples for r in results if not r.reused)
        reused = sum(r.reused for r in results)
        mlflow.log_metrics(
            {k: v for k, v in vars(summary).items() if isinstance(v, int)}
            | {f"rejected.{reason}": n for reason, n in summary.rejected_by_reason.items()}
            | {
                "shards_reused": reused,
                "seconds": seconds,
                "samples_per_s": generated / seconds if generated else 0.0,
            }
        )
    logger.info("%s (%d of %d shards reused)", summary.line(), reused, len(works))
    if summary.rejected_by_reason:
        reasons = ", ".join(f"{reason} {n}" for reason, n in summary.rejected_by_reason.items())
        logger.warning(
            "rejected by reason: %s; one line each in %s", reasons, out / "rejected.jsonl"
        )
    return summary


def run_describe(
    data: Path,
    out: Path,
    params: Params,
    metrics: Path | None = None,
    limit: int | None = None,
) -> DescribeSummary:
    """`describe_flow` on the task runner that describe.task_runner names."""
    runner = task_runner(params.describe)
    return describe_flow.with_options(task_runner=runner)(data, out, params, metrics, limit)


def task_runner(cfg: DescribeConfig) -> TaskRunner:
    """describe.task_runner on describe.cluster, or on a local cluster of describe.workers."""
    if cfg.task_runner == "threads":
        if cfg.cluster is not None:
            raise DescribeError(
                f"describe.cluster is {cfg.cluster!r} but describe.task_runner is threads: set "
                "task_runner to dask or ray to use that cluster, or set cluster: null"
            )
        return ThreadPoolTaskRunner(max_workers=cfg.workers)
    try:
        if cfg.task_runner == "dask":
            from prefect_dask import DaskTaskRunner

            if cfg.cluster is None:
                return DaskTaskRunner(cluster_kwargs={"n_workers": cfg.workers})
            return DaskTaskRunner(address=cfg.cluster)
        from prefect_ray import RayTaskRunner

        if cfg.cluster is None:
            return RayTaskRunner(init_kwargs={"num_cpus": cfg.workers})
        return RayTaskRunner(address=cfg.cluster)  # "auto": RAY_ADDRESS or this node's cluster
    except ImportError as err:
        raise DescribeError(
            f"describe.task_runner {cfg.task_runner!r} needs prefect-{cfg.task_runner} "
            f'(pip install "regionedit[{cfg.task_runner}]"), or set describe.task_runner: threads'
        ) from err


def _describe_all(
    works: list[ShardWork], data: Path, parts: Path, params: Params
) -> list[ShardResult]:
    """Every shard, describe.shards_per_task per task; failed tasks are reported together.
    At most IN_FLIGHT tasks (or 4 per worker, if more) are submitted at a time: each finished
    task's future is dropped, so memory stays flat in the number of shards."""
    size = params.describe.shards_per_task
    batches = iter([works[i : i + size] for i in range(0, len(works), size)])
    tasks = -(-len(works) // size)
    submit = describe_shards.with_options(retries=params.describe.task_retries).submit
    window = max(IN_FLIGHT, 4 * params.describe.workers)
    running, results, failures = {}, [], []
    total = sum(work.samples for work in works)
    with tqdm(total=total, desc="describe", unit="sample") as progress:
        while True:
            for batch in itertools.islice(batches, window - len(running)):
                running[submit(batch, data, parts, params)] = batch
            if not running:
                break
            future = next(as_completed(list(running)))
            batch = running.pop(future)
            try:
                done = future.result()
            except Exception as err:  # one shard's failure must not hide the others' results
                failures.append(f"{batch[0].shard}: {type(err).__name__}: {err}")
                continue
            results += done
            progress.update(sum(r.samples for r in done))
    if failures:
        raise DescribeError(
            f"{len(failures)} of {tasks} describe tasks failed (first: {failures[0]}); the "
            f"finished shards are kept in {parts}: run the same command again to resume"
        )
    return results
