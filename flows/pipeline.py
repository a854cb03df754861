"""The whole pipeline as one Prefect flow that drives DVC, one task per stage.

DVC decides what is stale; Prefect schedules, retries and reports. Each task runs
`dvc repro --single-item <stage>` for one stage of dvc.yaml, in dependency order, so the flow
and a reviewer's `dvc repro` run the same stage commands, `dvc.lock` stays the one record of
what produced what, and a stage whose deps, params and outs are unchanged does no work in
either entry point. A failed stage fails the flow run with the stage named and the end of
its log; later stages are not started, and the next run resumes where the failure stopped
(stages keep their persisted outputs).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import networkx as nx
from dvc.exceptions import DvcException
from dvc.repo import Repo
from prefect import flow, get_client, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from components.config import PipelineConfig, load_params

LOG_TAIL_LINES = 30


class StageFailed(RuntimeError):
    """A stage command exited non-zero; the message names the stage and quotes its log."""


@dataclass(frozen=True)
class StageOutcome:
    stage: str
    status: str  # "ran" | "up to date"
    seconds: float
    log: str


def pipeline_stages(repo: Path, targets: list[str] | None = None) -> list[str]:
    """The stages of dvc.yaml that `targets` need (all by default), dependencies first and
    otherwise in the order dvc.yaml lists them. A target is a stage (`train@1M`) or, as for
    `dvc repro`, a foreach group (`train`)."""
    with Repo(str(repo)) as dvc:
        graph = dvc.index.graph  # edges point from a stage to the stages it depends on
        position = {stage: i for i, stage in enumerate(dvc.index.stages)}
        wanted = set(graph.nodes)
        if targets:
            wanted = set()
            for target in targets:
                named = [s for s in graph.nodes if target in (s.name, stage_family(s.name))]
                if not named:
                    known = ", ".join(sorted(s.name for s in graph.nodes))
                    raise StageFailed(f"--target {target!r} is not a stage of dvc.yaml: {known}")
                for stage in named:
                    wanted |= {stage, *nx.descendants(graph, stage)}
        order = nx.lexicographical_topological_sort(
            graph.reverse().subgraph(wanted), key=lambda stage: f"{position[stage]:06d}"
        )
        return [stage.name for stage in order]


def stage_family(stage: str) -> str:
    return stage.split("@", 1)[0]


def _dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def _environment() -> dict[str, str]:
    """This interpreter's scripts first on PATH (stage commands call `regionedit` from it), and
    the API this flow reports to, so each stage's own flow run lands beside this one instead
    of in a temporary server started per stage."""
    scripts = str(Path(sys.executable).parent)
    with get_client(sync_client=True) as client:
        api = str(client.api_url)
    return os.environ | {
        "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")]),
        "PREFECT_API_URL": api,
    }


def stage_is_current(repo: Path, stage: str) -> bool:
    """`dvc status` of the stage alone: unchanged deps, params and outs. Asked in this process
    (DVC's API; a `dvc status` subprocess per stage would start Python and DVC again)."""
    try:  # DVC resolves outputs against the working directory, as its CLI runs in the repo
        with contextlib.chdir(repo), Repo(".") as dvc:
            return dvc.status(targets=[stage]) == {}
    except DvcException as err:
        raise StageFailed(f"stage {stage}: `dvc status` failed: {err}") from err


@task(name="stage", cache_policy=NO_CACHE)
def reproduce_stage(repo: Path, stage: str, logs: Path) -> StageOutcome:
    """`dvc repro --single-item <stage>`, its output streamed to the run log and a file."""
    logger = get_run_logger()
    start = time.perf_counter()
    log = logs / f"{stage}.log"
    if stage_is_current(repo, stage):
        logger.info("%s: up to date", stage)
        return StageOutcome(stage, "up to date", time.perf_counter() - start, str(log))
    logs.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"--- {datetime.now(UTC).isoformat()} dvc repro --single-item {stage}\n")
        process = subprocess.Popen(
            _dvc("repro", "--single-item", stage),
            cwd=repo,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        for line in process.stdout:
            handle.write(line)
            handle.flush()
            tail.append(line.rstrip())
            logger.info("%s | %s", stage, line.rstrip())
        code = process.wait()
    if code != 0:
        raise StageFailed(
            f"stage {stage} failed (exit {code}); last lines of {log}:\n" + "\n".join(tail)
        )
    return StageOutcome(stage, "ran", time.perf_counter() - start, str(log))


def _retries(cfg: PipelineConfig, stage: str) -> int:
    return cfg.retries.get(stage_family(stage), 0)


@flow(name="pipeline", log_prints=True)
def pipeline_flow(repo: str = ".", targets: list[str] | None = None) -> list[StageOutcome]:
    """prepare → zoo → describe → train@scales → evaluate@scales×benchmarks → report, each
    stage a task that DVC skips when nothing it reads has changed."""
    root = Path(repo).resolve()
    cfg = load_params(root / "params.yaml").pipeline
    logs = root / cfg.logs / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stages = pipeline_stages(root, targets)
    logger = get_run_logger()
    logger.info("%d stages: %s", len(stages), ", ".join(stages))
    outcomes = []
    for stage in stages:
        run_stage = reproduce_stage.with_options(
            task_run_name=stage,
            retries=_retries(cfg, stage),
            retry_delay_seconds=cfg.retry_delay_seconds,
        )
        outcomes.append(run_stage(root, stage, logs))
    create_table_artifact(
        [{"stage": o.stage, "status": o.status, "seconds": round(o.seconds, 1)} for o in outcomes],
        key="pipeline-stages",
        description="What each stage of this run did (DVC skips up-to-date stages).",
    )
    ran = [o.stage for o in outcomes if o.status == "ran"]
    logger.info(
        "pipeline done: %d stages ran (%s), %d up to date",
        len(ran),
        ", ".join(ran) or "none",
        len(outcomes) - len(ran),
    )
    return outcomes
