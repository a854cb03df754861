"""Benchmark `prepare`: images/s with 1 worker and with every core, and peak memory.

    python benchmarks/prepare_throughput.py [--images 300] [--repeats 3]

Each measurement runs in a fresh process, so peak RSS is that run's own. Memory is measured
at N and 2N images: a flat peak shows that `prepare` streams instead of holding the dataset.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from components.data.images import ImageLimits
from components.data.prepare import prepare_dataset
from components.data.sources import folder_records


def make_source(folder: Path, count: int) -> Path:
    """`count` distinct 512x384 pictures, alternating JPEG and PNG, with captions.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["file,caption"]
    rng = np.random.default_rng(0)
    for i in range(count):
        smooth = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        image = Image.fromarray(smooth, "RGB").resize((512, 384), Image.Resampling.BICUBIC)
        name = f"img{i:05d}.{'jpg' if i % 2 else 'png'}"
        image.save(folder / name)
        rows.append(f"{name},generated picture {i}")
    (folder / "captions.csv").write_text("\n".join(rows) + "\n")
    return folder


def run_once(source: Path, out: Path, workers: int) -> dict[str, float]:
    start = time.perf_counter()
    summary = prepare_dataset(
        folder_records(source), out, ImageLimits(64, 50_000_000), 1000, workers, progress=False
    )
    seconds = time.perf_counter() - start
    to_mib = 1 / 1024  # ru_maxrss is in KiB on Linux
    return {
        "seconds": seconds,
        "images": summary.inputs,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * to_mib,
        "peak_worker_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * to_mib,
    }


def measure(source: Path, out: Path, workers: int) -> dict[str, float]:
    """One run in a fresh interpreter, so its peak memory is its own."""
    command = [sys.executable, __file__, "--single", str(source), str(out), str(workers)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--single", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        source, out, workers = args.single
        print(json.dumps(run_once(Path(source), Path(out), int(workers))))
        return
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        small = make_source(Path(tmp) / "small", args.images)
        large = make_source(Path(tmp) / "large", 2 * args.images)
        print(f"prepare on {args.images} generated 512x384 images, median of {args.repeats}")
        rates = {}
        for workers in sorted({1, cores}):
            runs = [measure(small, Path(tmp) / "out", workers) for _ in range(args.repeats)]
            rates[workers] = statistics.median(args.images / r["seconds"] for r in runs)
            print(
                f"  workers={workers}: {rates[workers]:.1f} images/s, peak RSS main "
                f"{statistics.median(r['peak_rss_mib'] for r in runs):.0f} MiB, worker "
                f"{statistics.median(r['peak_worker_rss_mib'] for r in runs):.0f} MiB"
            )
        if cores > 1:
            print(f"  speed-up with {cores} workers: {rates[cores] / rates[1]:.2f}x")
        peaks = [measure(src, Path(tmp) / "out", 1)["peak_rss_mib"] for src in (small, large)]
        print(
            f"  peak RSS, 1 worker: {peaks[0]:.0f} MiB at {args.images} images, "
            f"{peaks[1]:.0f} MiB at {2 * args.images} images "
            f"(ratio {peaks[1] / peaks[0]:.2f})"
        )


if __name__ == "__main__":
    main()
