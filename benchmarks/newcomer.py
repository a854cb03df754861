"""The README's two commands timed as a newcomer meets them (issue 30's budgets).

Runs `../shared/tools/newcomer-check --only N` (a fresh clone of HEAD, a brand-new venv, README
command N exactly as written) and stamps each line of the command's log as it is written, so the
install and the work after it are timed apart:

- command 1 (install + `dvc repro`): the `dvc repro` part runs from DVC's first "Running stage"
  line to the end, each stage from its "Running stage" line to the next;
- command 2 (install + lint + docs + tests): pytest's own wall time, from its summary line.

`--hogs K` starts K CPU-bound processes for the whole run (a busy laptop) and stops them after.

    python benchmarks/newcomer.py --only 1 [--hogs 2] [--label loaded]

Writes benchmarks/results/newcomer_<N>[_<label>].{json,md} (docs/orchestration.md includes them).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT.parent / "shared" / "tools" / "newcomer-check"
RESULT = re.compile(r"== command (\d+) exit (\d+) in (\d+) s \(log: (.+)\)")
SLOWEST_STAGES = 8
COMMAND = re.compile(r"== command \d+: (.+)")  # newcomer-check echoes the README's command
STAGE = re.compile(r"Running stage '([^']+)'")
PYTEST_SUMMARY = re.compile(r"=+ .*\b(\d+) passed.* in ([\d.]+)s")


def _hog() -> None:
    while True:
        pass


def _follow(existing: set[Path], command: int, process) -> list[tuple[float, str]]:
    """Lines of this run's log of `command` (in the newcomer-check folder that is not in
    `existing`), each stamped when first seen, until newcomer-check exits."""
    stamped: list[tuple[float, str]] = []
    log, offset, tail = None, 0, ""
    while True:
        done = process.poll() is not None
        if log is None:
            fresh = [f for f in Path(tempfile.gettempdir()).glob("newcomer.*") if f not in existing]
            log = fresh[0] / f"cmd{command}.log" if fresh else None
        if log is not None and log.is_file():
            with log.open("rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            offset += len(chunk)
            now = time.time()
            *lines, tail = (tail + chunk.decode(errors="replace")).split("\n")
            stamped += [(now, line) for line in lines]
        if done:
            if tail:
                stamped.append((time.time(), tail))
            return stamped
        time.sleep(0.5)


def measure(command: int, hogs: int, tool: Path) -> dict:
    workers = [multiprocessing.Process(target=_hog, daemon=True) for _ in range(hogs)]
    for worker in workers:
        worker.start()
    start = time.time()
    try:
        existing = set(Path(tempfile.gettempdir()).glob("newcomer.*"))
        process = subprocess.Popen(
            [str(tool), "--only", str(command)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines = _follow(existing, command, process)
        output = process.stdout.read() if process.stdout else ""
        process.wait()
    finally:
        for worker in workers:
            worker.terminate()
    match = RESULT.search(output)
    if match is None:
        raise RuntimeError(f"newcomer-check printed no result line:\n{output[-3000:]}")
    record = {
        "command": command,
        "what": f"`{COMMAND.search(output).group(1)}`",
        "exit": int(match.group(2)),
        "total_s": int(match.group(3)),
        "hogs": hogs,
        "machine": f"{os.cpu_count()} cores",
        "commit": subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(start)),
    }
    if command == 1:
        stages = [(t, m.group(1)) for t, line in lines if (m := STAGE.match(line))]
        ends = [t for t, _ in stages[1:]] + [lines[-1][0]] * bool(stages)
        record["dvc_repro_s"] = round(lines[-1][0] - stages[0][0], 1) if stages else None
        record["stages_run"] = len(stages)
        record["stages"] = [
            {"stage": name, "s": round(end - t, 1)}
            for (t, name), end in zip(stages, ends, strict=True)
        ]
    else:
        summary = [PYTEST_SUMMARY.search(line) for _, line in lines]
        found = [m for m in summary if m]
        record["pytest_s"] = float(found[-1].group(2)) if found else None
        record["tests_passed"] = int(found[-1].group(1)) if found else None
        record["slowest"] = _slowest([line for _, line in lines])
    return record


def _slowest(lines: list[str]) -> list[dict]:
    """pytest's `--durations` rows: seconds and test."""
    rows = []
    for line in lines:
        match = re.match(r"\s*([\d.]+)s (call|setup|teardown)\s+(\S+)", line)
        if match:
            seconds, phase, test = match.groups()
            rows.append({"s": float(seconds), "phase": phase, "test": test})
    return rows


def markdown(record: dict) -> str:
    load = f", with {record['hogs']} CPU-bound processes running" if record["hogs"] else ""
    lines = [
        f"README command {record['command']} ({record['what']}) in a fresh clone and a new venv "
        f"(`newcomer-check --only {record['command']}`), {record['machine']}{load}, "
        f"started {record['started']}: exit {record['exit']}, **{record['total_s'] / 60:.1f} min** "
        "in all.",
    ]
    if record["command"] == 1 and record.get("dvc_repro_s") is not None:
        lines[0] += (
            f" `dvc repro` itself (first stage to last line, {record['stages_run']} stages run): "
            f"**{record['dvc_repro_s'] / 60:.1f} min**."
        )
        slowest = sorted(record["stages"], key=lambda stage: -stage["s"])[:SLOWEST_STAGES]
        lines += ["", "| slowest stages | s |", "|---|---:|"]
        lines += [f"| `{stage['stage']}` | {stage['s']:.0f} |" for stage in slowest]
    if record["command"] == 2 and record.get("pytest_s") is not None:
        lines[0] += (
            f" pytest: {record['tests_passed']} passed in {record['pytest_s'] / 60:.1f} min."
        )
        if record["slowest"]:
            lines += ["", "| slowest tests | s |", "|---|---:|"]
            lines += [f"| `{r['test']}` ({r['phase']}) | {r['s']:.0f} |" for r in record["slowest"]]
    hogs = f" --hogs {record['hogs']} --label {record['label']}" if record["hogs"] else ""
    regenerate = f"python benchmarks/newcomer.py --only {record['command']}{hogs}"
    lines += ["", f"Regenerate: `{regenerate}`.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", type=int, choices=(1, 2), required=True)
    parser.add_argument("--hogs", type=int, default=0, help="CPU-bound processes beside the run")
    parser.add_argument("--label", default="", help="names the result files (e.g. loaded)")
    parser.add_argument("--tool", type=Path, default=TOOL)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if not args.tool.is_file():
        sys.exit(f"{args.tool}: no newcomer-check there; pass --tool PATH")
    record = measure(args.only, args.hogs, args.tool) | {"label": args.label}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / ("_".join(filter(None, ["newcomer", str(args.only), args.label])))
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(record))
    print(markdown(record))
    if record["exit"]:
        sys.exit(f"README command {args.only} failed (exit {record['exit']})")


if __name__ == "__main__":
    main()
