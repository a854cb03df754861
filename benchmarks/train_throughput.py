"""Training samples/s on the CPU with 1 and 2 processes, data-wait share and peak memory per rank.

    python benchmarks/train_throughput.py [--params params.yaml] [--steps 20] [--batch 4]

Runs the real entry point (`train_flow`: in-process for 1 process, torchrun for 2) on the
prepared demo data and its descriptions (run `dvc repro describe` first), with tracking off,
and prints what each rank reports (components/training/callbacks.py: RankReport). Run it on a
quiet machine; both settings are measured in the same run so their ratio is comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from components.config import load_params
from components.training.fit import ScaleRun
from components.training.launch import launch


def measure(params, scale: str, root: Path, prepared: Path, descriptions: Path) -> list[dict]:
    folder = root / f"devices-{params.train.devices}"
    folder.mkdir(parents=True)
    run = ScaleRun(scale, prepared, descriptions, folder, folder / "loss.csv", None, None)
    launch(params, run, resume=False)  # in this process for 1 device, torchrun for more
    return [json.loads(p.read_text()) for p in sorted((folder / "ranks").glob("rank-*.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--prepared", default="data/prepared")
    parser.add_argument("--descriptions", default="data/descriptions/descriptions.parquet")
    args = parser.parse_args()
    params = load_params(args.params)
    scale = list(params.scales)[-1]
    print(
        f"scale {scale} ({params.scales[scale]} samples), {args.steps} steps, batch "
        f"{args.batch} per process, resolution {params.method.resolution}, "
        f"K = {params.method.steps}, {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory() as tmp:
        rates = {}
        for devices in (1, 2):
            train = params.train.model_copy(
                update={
                    "devices": devices,
                    "strategy": "ddp" if devices > 1 else "auto",
                    "max_steps": args.steps,
                    "batch_size": args.batch,
                }
            )
            reports = measure(
                params.model_copy(update={"train": train}),
                scale,
                Path(tmp),
                Path(args.prepared),
                Path(args.descriptions),
            )
            rates[devices] = sum(r["samples_per_second"] for r in reports)
            for r in reports:
                print(
                    f"  {devices} process(es), rank {r['rank']}: "
                    f"{r['samples_per_second']:.1f} samples/s, data wait "
                    f"{r['data_wait_share']:.1%} of wall time, peak RSS "
                    f"{r['peak_rss_mib']:.0f} MiB"
                )
            print(f"  {devices} process(es): {rates[devices]:.1f} samples/s in total")
        print(f"  2 processes / 1 process: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
