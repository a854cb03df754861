"""Per-stage orchestration overhead of a plain `dvc repro` in a fresh clone (issue 30).

Clones the committed HEAD, runs `dvc repro` there with no Prefect API configured and a fresh
PREFECT_HOME (as on a new machine), stamps every line of its output, and splits each stage's
wall time (DVC's "Running stage" to the next) into its work (its flow run, from Prefect's first
"Beginning flow run" to its last "Finished in state") and the rest: starting Python and the
imports, the Prefect API, DVC's hashing and lock file. Writes a JSON record and a markdown table
(docs/orchestration.md includes it).

    python benchmarks/orchestration.py --params PARAMS --label small-world

`--params` replaces the clone's params.yaml (a small world keeps the run to minutes; the tests'
SMALL_WORLD is the one measured in the docs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = re.compile(r"Running stage '([^']+)'")
# The stage waits for a Prefect API: Prefect's own temporary server per process, from its
# start-up line to the flow run's first line; or flows/shared_server.py's, from "starting" to
# "ready" (a running one is leased at once: "reporting to").
API_WAIT = re.compile(r"Starting temporary server|^prefect: starting ")
API_READY = re.compile(r"^prefect: ready ")
FLOW = re.compile(r"\| Flow run .* - (Beginning flow run|Finished in state)")
PARTS = ("imports_s", "work_s", "overhead_s")


def stamped_repro(clone: Path) -> list[tuple[float, str | None]]:
    """`dvc repro` in `clone`, each output line with the wall-clock second it arrived."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env |= {"PYTHONPATH": str(clone), "PREFECT_HOME": str(clone / ".prefect-home")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    process = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    lines = []
    for line in process.stdout:
        lines.append((time.time(), line.rstrip()))
        print(line, end="", flush=True)
    if process.wait() != 0:
        raise SystemExit(f"dvc repro failed (exit {process.returncode}); see its output above")
    lines.append((time.time(), None))
    return lines


def stages(lines: list[tuple[float, str | None]]) -> list[dict]:
    """Each stage's wall seconds split into its work (the flow run), its imports (Python and
    the stage's libraries: the time to the flow run's start, less any wait for an API) and the
    rest, orchestration: the wait for a Prefect API, the stage process's exit, DVC's hashing
    and lock file."""
    found, current = [], None
    for stamp, line in lines:
        if line is None or (match := STAGE.search(line)):  # None: the end of the output
            if current:
                found.append(_closed(current, stamp))
            current = {"stage": match.group(1), "start": stamp, "flow": []} if line else None
        elif current and API_WAIT.search(line):
            current["wait"] = stamp
        elif current and API_READY.search(line):
            current["ready"] = stamp
        elif current and (flow := FLOW.search(line)):
            current["flow"].append((flow.group(1).startswith("Beginning"), stamp))
    return found


def _closed(stage: dict, end: float) -> dict:
    begins = [stamp for beginning, stamp in stage["flow"] if beginning]
    ends = [stamp for beginning, stamp in stage["flow"] if not beginning]
    wall = end - stage["start"]
    if not (begins and ends):
        return {"stage": stage["stage"], "wall_s": round(wall, 1)} | dict.fromkeys(PARTS)
    waited = stage.get("ready", begins[0]) - stage["wait"] if "wait" in stage else 0.0
    imports, work = begins[0] - stage["start"] - waited, ends[-1] - begins[0]
    return {
        "stage": stage["stage"],
        "wall_s": round(wall, 1),
        "imports_s": round(imports, 1),
        "work_s": round(work, 1),
        "overhead_s": round(wall - imports - work, 1),
    }


def markdown(record: dict) -> str:
    rows = [
        f"| {s['stage']} | {s['wall_s']:.1f} | "
        + " | ".join("" if s[part] is None else f"{s[part]:.1f}" for part in PARTS)
        + " |"
        for s in record["stages"]
    ]
    medians = record["median_s"]
    return "\n".join(
        [
            f"# Orchestration overhead per stage: {record['label']}",
            "",
            f"`dvc repro` of the committed HEAD in a fresh clone ({record['label']}, "
            f"{record['machine']}, {record['wall_s']:.0f} s in all). Median per stage over "
            f"{record['stages_measured']} stages: orchestration **{medians['overhead_s']:.1f} s**, "
            f"imports {medians['imports_s']:.1f} s, the flow's work {medians['work_s']:.1f} s.",
            "",
            "| stage | wall (s) | imports (s) | its flow (s) | orchestration (s) |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            "Orchestration: the wait for a Prefect API (a temporary server's start-up), the "
            "stage process's exit, DVC's hashing and lock file. Imports: Python, the stage's "
            "libraries and the flow engine, up to the flow run's start (less the wait). "
            "Regenerate: "
            f"`python benchmarks/orchestration.py --params PARAMS --label {record['label']}`.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, help="a params.yaml for the clone")
    parser.add_argument("--label", default="default", help="names the result files")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--from-log",
        type=Path,
        help="split a log written earlier (`<epoch seconds> <line>` per line) instead of running",
    )
    args = parser.parse_args()
    if args.from_log:
        lines = [_stamped(line) for line in args.from_log.read_bytes().decode().split("\n") if line]
        commit = "(from a log)"
    else:
        commit = _git("rev-parse", "HEAD")
        with tempfile.TemporaryDirectory() as folder:
            clone = Path(folder) / "clone"
            _git("clone", "-q", str(ROOT), str(clone))
            if args.params:
                shutil.copy(args.params, clone / "params.yaml")
            lines = stamped_repro(clone)
    measured = stages(lines)
    wall = lines[-1][0] - lines[0][0]
    measured_stages = [s for s in measured if s["work_s"] is not None]
    record = {
        "label": args.label,
        "commit": commit,
        "machine": f"{os.cpu_count()} cores",
        "wall_s": round(wall, 1),
        "stages_measured": len(measured_stages),
        "median_s": {
            part: round(statistics.median(s[part] for s in measured_stages), 1) for part in PARTS
        },
        "stages": measured,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"orchestration_{args.label}"
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(record))
    print(markdown(record))


def _stamped(line: str) -> tuple[float, str | None]:
    stamp, _, rest = line.partition(" ")
    return float(stamp), None if rest == "END" else rest


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip()


if __name__ == "__main__":
    main()
