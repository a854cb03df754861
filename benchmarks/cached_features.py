"""What the feature cache saves per training step: median step time with and without it.

    python benchmarks/cached_features.py [--params params.yaml] [--steps 20] [--batch 4]

Builds the cache of the prepared demo data (run `dvc repro describe` first) in a temporary
folder with the `features` stage's own functions, then runs training steps (data loading,
forward, backward, optimizer step) of the real model on the same batches, alternating the
uncached and the cached path step by step so that machine noise hits both alike. Prints the
median seconds of each part and the saving.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from components.config import Params, load_params
from components.features.index import FeatureCache, cache_settings
from components.features.shards import cache_shard, features_identity, finish, plan_features
from components.features.store import write_unconditional
from components.method.build import build_frozen_parts, build_region_edit_model
from components.training.data import CachedCollate, ScaleStream, scale_of

PREPARED, DESCRIPTIONS = Path("data/prepared"), Path("data/descriptions/descriptions.parquet")


def build_cache(params: Params, prepared: Path, descriptions: Path, out: Path) -> FeatureCache:
    identity = features_identity(params.models, params.method)
    plans = list(plan_features(prepared, descriptions, identity))
    parts = build_frozen_parts(params.models, params.method.instruction_tokens)
    resolutions = (params.method.resolution, params.method.in_training.resolution)
    for plan in plans:
        cache_shard(plan, prepared, out, lambda: parts, *resolutions, 16)
    write_unconditional(out, parts[1].encode_prompt([""]).unconditional)
    finish(out, [plan.entry for plan in plans], identity, out / "metrics.json")
    return FeatureCache(out, cache_settings(params.models, params.method))


def batches(params: Params, prepared: Path, descriptions: Path, batch: int, cache) -> Iterator:
    scale = list(params.scales)[-1]
    samples = scale_of(prepared, descriptions, params.scales[scale], params.seed, scale)
    stream = ScaleStream(
        samples, prepared / "shards", params.method.resolution, params.seed, 0, batch, 0, cache
    )
    collate = CachedCollate(cache.unconditional() if cache else None)
    return iter(DataLoader(stream, batch_size=batch, collate_fn=collate))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    params = load_params(args.params)
    prepared, descriptions = PREPARED, DESCRIPTIONS
    torch.manual_seed(params.seed)
    model = build_region_edit_model(params.models, params.method)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=params.train.lr)
    times: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    @contextmanager
    def timed(mode: str, part: str):
        start = time.perf_counter()
        yield
        times[mode][part].append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        cache = build_cache(params, prepared, descriptions, Path(tmp))
        build_seconds = time.perf_counter() - start
        loaders = {
            "uncached": batches(params, prepared, descriptions, args.batch, None),
            "cached": batches(params, prepared, descriptions, args.batch, cache),
        }
        for step in range(args.steps + 1):  # step 0 warms up and is not counted
            for mode in sorted(loaders, reverse=step % 2 == 1):
                record = mode if step else "warm-up"
                with timed(record, "step"):
                    with timed(record, "data"):
                        batch = next(loaders[mode])
                    out = model(
                        batch["image"],
                        batch["t_o"],
                        batch["t_ins"],
                        batch["t_e"],
                        torch.Generator().manual_seed(step),
                        stage=lambda name, record=record: timed(record, name),
                        cached=batch.get("cached"),
                    )
                    with timed(record, "backward"):
                        optimizer.zero_grad()
                        out.terms["total"].backward()
                        optimizer.step()
        size = sum(f.stat().st_size for f in Path(tmp, "shards").iterdir())
    print(
        f"tiny zoo on CPU ({torch.get_num_threads()} threads), batch {args.batch}, resolution "
        f"{params.method.resolution}, K = {params.method.steps}, {args.steps} steps per mode; "
        f"cache built in {build_seconds:.1f} s, {size / 1024:.0f} KiB"
    )
    parts = [
        "step",
        "data",
        "encoders",
        "head",
        "generation",
        "composition",
        "clip_on_result",
        "losses",
        "backward",
    ]
    print(f"{'median seconds':<16}{'uncached':>10}{'cached':>10}{'saved':>10}")
    for part in parts:
        before = statistics.median(times["uncached"][part])
        after = statistics.median(times["cached"][part])
        print(f"{part:<16}{before:>10.4f}{after:>10.4f}{before - after:>10.4f}")
    before = statistics.median(times["uncached"]["step"])
    after = statistics.median(times["cached"]["step"])
    print(f"step time saved: {1 - after / before:.1%} ({before / after:.2f}x samples/s)")


if __name__ == "__main__":
    main()
