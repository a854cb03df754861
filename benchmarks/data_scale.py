"""The data path at scale: N world scenes through prepare, describe, features and one pass of
training's data loader, with each stage's samples/s, peak memory and disk per sample.

    python benchmarks/data_scale.py --samples 100000 [--source webdataset|folder] [--work DIR]

The scenes (the world's training scenes, DESIGN §10, with their captions) are written as a user
would bring them: WebDataset tars of 10,000 samples (img2dataset's KEY.png + KEY.txt), or a
folder of PNGs with captions.csv. Each stage then runs as its own process, as `regionedit`
runs it (`prepare`, `describe` with the template backend, `features` with the world's models,
all with this checkout's params.yaml and the overrides below). The loader pass reads the
largest of five nested scales (1/5 … 5/5 of the described samples, as 1M … 5M) once through
training's DataLoader with its cached features; then the nested-subset property is checked on
the keys. A sampler polls each stage's process tree every 0.2 s: `peak_rss_mib` is the stage's
own process, `peak_tree_mib` the sum over it and its children (decoding workers, Prefect's
temporary server). Prints a table and writes benchmarks/results/data_scale_<N>.json after
every stage, so a long run that is stopped keeps what it measured.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import psutil
import yaml

from components.data.images import encode_png
from components.data.scenes import scene

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PER_TAR = 10_000
REPEAT_EVERY = 100
STAGES = ("prepare", "describe", "features", "loader", "scales")
OUTS = {"prepare": "prepared", "describe": "descriptions", "features": "features"}


def write_source(kind: str, folder: Path, samples: int, seed: int, side: int) -> None:
    """The world's first `samples` training scenes as WebDataset tars or a captioned folder."""
    folder.mkdir(parents=True)
    records = (distinct_scene(seed, index, side) for index in range(samples))
    if kind == "webdataset":
        for first in range(0, samples, PER_TAR):
            with tarfile.open(folder / f"{first // PER_TAR:05d}.tar", "w") as tar:
                for index in range(first, min(first + PER_TAR, samples)):
                    png, caption = next(records)
                    for ext, payload in (("png", png), ("txt", caption.encode())):
                        info = tarfile.TarInfo(f"{index:09d}.{ext}")
                        info.size = len(payload)
                        tar.addfile(info, io.BytesIO(payload))
        return
    with (folder / "captions.csv").open("w", newline="", encoding="utf-8") as handle:
        rows = csv.writer(handle)
        rows.writerow(["file", "caption"])
        for index, (png, caption) in enumerate(records):
            name = f"{index // PER_TAR:05d}/{index:09d}.png"  # no folder of a million files
            (folder / name).parent.mkdir(exist_ok=True)
            (folder / name).write_bytes(png)
            rows.writerow([name, caption])


def distinct_scene(seed: int, index: int, side: int) -> tuple[bytes, str]:
    """Scene `index` as PNG bytes, and its caption. The world draws few distinct one-object
    scenes (20,000 give 16,809 distinct pictures), so the index is written into the top-left
    pixel: every picture differs, as a real corpus's do, except that one in REPEAT_EVERY is
    the scene REPEAT_EVERY // 2 before it, which `prepare` must find as a duplicate."""
    if index % REPEAT_EVERY == REPEAT_EVERY - 1:
        index -= REPEAT_EVERY // 2
    image, caption = scene(seed, index, side)
    image.putpixel((0, 0), tuple(index.to_bytes(3, "big")))
    return encode_png(image), caption


def write_params(work: Path, per_shard: int, side: int) -> Path:
    """This checkout's params.yaml with the benchmark's shards, side and tracking store."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["prepare"] |= {"samples_per_shard": per_shard, "workers": 0}
    params["world"]["side"] = side
    params["tracking"]["uri"] = f"sqlite:///{work / 'mlflow.db'}"
    path = work / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def check_models(params: Path) -> None:
    """The models `features` loads, checked before the hours of writing, `prepare` and
    `describe` that come before it: a missing folder names the command that builds it."""
    from components.config import load_params
    from components.features.index import cache_settings
    from components.models.loading import (
        OPEN_CLIP_LOCAL,
        ModelLoadError,
        checked_folder,
        local_folder,
    )

    values = load_params(params)
    for key, spec in cache_settings(values.models, values.method)["models"].items():
        if spec and (folder := local_folder(spec.removeprefix(OPEN_CLIP_LOCAL))):
            try:
                checked_folder(ROOT / folder)
            except ModelLoadError as error:
                raise SystemExit(f"data_scale: models.{key}: {error}") from None


def set_scales(params: Path, described: int) -> dict[str, int]:
    """Five nested scales, k/5 of 95 % of the described samples (the world's 640 of 660)."""
    largest = int(described * 0.95)
    scales = {f"{k}M": largest * k // 5 for k in range(1, 6)}
    values = yaml.safe_load(params.read_text())
    values["scales"] = scales
    params.write_text(yaml.safe_dump(values, sort_keys=False))
    return scales


def measured(command: list[str], log: Path, tick=lambda record: None) -> dict[str, float]:
    """Run `command`; its wall time and the peaks of its own and its tree's resident memory,
    also handed to `tick` every 30 s while it runs (a stopped benchmark keeps them)."""
    start = last = time.perf_counter()
    mib = 1 / 2**20
    with log.open("a") as output:
        process = psutil.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        own = tree = 0
        while process.poll() is None:
            try:
                rss = process.memory_info().rss
                children = sum(c.memory_info().rss for c in process.children(recursive=True))
            except psutil.Error:  # a child ended between the listing and the reading
                continue
            own, tree = max(own, rss), max(tree, rss + children)
            if time.perf_counter() - last > 30:
                last = time.perf_counter()
                tick(
                    {
                        "seconds": last - start,
                        "peak_rss_mib": own * mib,
                        "peak_tree_mib": tree * mib,
                    }
                )
            time.sleep(0.2)
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}); see {log}")
    return {
        "seconds": time.perf_counter() - start,
        "peak_rss_mib": own * mib,
        "peak_tree_mib": tree * mib,
    }


def combined(before: dict, run: dict) -> dict:
    """A stage's record over its runs: a stopped stage resumes, so its times add up."""
    return {
        "seconds": before.get("seconds", 0.0) + run["seconds"],
        "peak_rss_mib": max(before.get("peak_rss_mib", 0.0), run["peak_rss_mib"]),
        "peak_tree_mib": max(before.get("peak_tree_mib", 0.0), run["peak_tree_mib"]),
        "runs": before.get("runs", 0) + 1,
    }


def commit() -> str:
    """The checkout a stage ran on, "+changes" where it had uncommitted ones (results aside:
    the benchmark rewrites them as it runs)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True)
    changed = ["git", "diff", "--quiet", "HEAD", "--", ".", ":!benchmarks/results"]
    dirty = subprocess.run(changed, cwd=ROOT).returncode
    return head.stdout.decode().strip() + ("+changes" if dirty else "")


def disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def loader_pass(work: Path) -> None:
    """One pass of the largest scale through training's DataLoader, with cached features: as
    many samples as the scale holds, drawn as training draws them (shards with replacement)."""
    from torch.utils.data import DataLoader

    from components.config import load_params
    from components.features.index import FeatureCache, cache_settings
    from components.training.data import CachedCollate, ScaleStream, check_cached, scale_of

    params = load_params(work / "params.yaml")
    name, count = list(params.scales.items())[-1]
    prepared, descriptions = work / "prepared", work / "descriptions" / "descriptions.parquet"
    cache = FeatureCache(work / "features", cache_settings(params.models, params.method))
    scale = scale_of(prepared, descriptions, count, params.seed, name)
    check_cached(scale, cache)  # as training's setup does
    batch = params.train.batch_size
    stream = ScaleStream(
        scale, prepared / "shards", params.method.resolution, params.seed, 0, batch, 0, cache
    )
    loader = DataLoader(
        stream,
        batch_size=batch,
        num_workers=params.train.num_workers,
        collate_fn=CachedCollate(cache.unconditional()),
    )
    seen, skipped, outside, batches = 0, 0, 0, iter(loader)
    while seen < count:
        samples = next(batches)
        keys = np.array(samples["key"], dtype=np.bytes_)
        outside += int((~scale.holds(keys)).sum())
        seen, skipped = seen + len(keys), skipped + samples["skipped"]
    assert outside == 0, f"{outside} samples from outside the scale"
    print(json.dumps({"scale": name, "samples": seen, "skipped": skipped, "outside": outside}))


def check_scales(work: Path) -> None:
    """The nested-subset property on keys: each scale's samples are all in the next one's.
    Scales are built smallest first, with two held at a time, as training holds one."""
    from components.config import load_params
    from components.training.data import scale_of

    params = load_params(work / "params.yaml")
    prepared, descriptions = work / "prepared", work / "descriptions" / "descriptions.parquet"
    smaller, sizes = None, {}
    for name, count in params.scales.items():
        scale = scale_of(prepared, descriptions, count, params.seed, name)
        assert len(np.unique(scale.keys)) == count == sum(scale.per_shard.values())
        if smaller is not None:
            assert scale.holds(smaller.keys).all(), f"{smaller.name} is not inside {name}"
        smaller, sizes[name] = scale, len(scale)
    print(json.dumps({"nested": sizes}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, help="world scenes to generate (up to 1,000,000)")
    parser.add_argument("--source", choices=("webdataset", "folder"), default="webdataset")
    parser.add_argument("--work", type=Path, help="scratch folder; default a temporary one")
    parser.add_argument("--per-shard", type=int, default=1000, help="prepare.samples_per_shard")
    parser.add_argument("--side", type=int, default=64, help="scene side in pixels")
    parser.add_argument("--features-batch", type=int, default=64, help="features --batch-size")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue a stopped run in --work: finished stages are kept; the stopped one resumes "
        "as the stages do, and its times add up",
    )
    parser.add_argument(
        "--redo",
        action="append",
        choices=STAGES,
        default=[],
        help="with --resume: measure this stage again from nothing, on this checkout (its "
        "output is deleted first); later stages are kept, so use it where the output comes out "
        "the same, as after a change to memory or speed only",
    )
    parser.add_argument("--stage", choices=("loader", "scales"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:  # one measured stage, run by the benchmark in its own process
        {"loader": loader_pass, "scales": check_scales}[args.stage](args.work)
        return
    if not args.samples or args.samples < 100:
        parser.error("--samples: give at least 100 scenes")
    if args.redo and not args.resume:
        parser.error("--redo: give --resume too (a new run measures every stage anyway)")
    work = args.work or Path(os.environ.get("TMPDIR", "/tmp")) / f"data_scale_{args.samples}"
    out = RESULTS / f"data_scale_{args.samples}.json"
    if args.resume and out.is_file() and (work / "params.yaml").is_file():
        result = json.loads(out.read_text())
        for stage in args.redo:
            result["stages"].pop(stage, None)
            if stage in OUTS:
                shutil.rmtree(work / OUTS[stage], ignore_errors=True)
        print(f"resuming {work}: done {[s for s, r in result['stages'].items() if r['done']]}")
    else:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        write_params(work, args.per_shard, args.side)
        result = {
            "samples": args.samples,
            "source": args.source,
            "samples_per_shard": args.per_shard,
            "side": args.side,
            "machine": f"{platform.node()}: {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
            "models": "the world's (models/world), trained here",
            "command": " ".join(["python", "benchmarks/data_scale.py", *sys.argv[1:]]),
            "stages": {},
        }
    params = work / "params.yaml"
    if not result["stages"].get("features", {}).get("done"):
        check_models(params)

    def save() -> None:
        out.write_text(json.dumps(result, indent=2) + "\n")

    if "source_seconds" not in result:  # writing the source does not resume: it starts over
        shutil.rmtree(work / "source", ignore_errors=True)
        start = time.perf_counter()
        write_source(args.source, work / "source", args.samples, 0, args.side)
        result["source_seconds"] = time.perf_counter() - start
        result["source_bytes_per_sample"] = disk(work / "source") / args.samples
        save()
    regionedit = [str(Path(sys.executable).parent / "regionedit")]
    commands = {
        "prepare": [*regionedit, "prepare", "--source", str(work / "source")],
        "describe": [*regionedit, "describe", "--data", str(work / "prepared")],
        "features": [
            *regionedit,
            "features",
            "--data",
            str(work / "prepared"),
            "--descriptions",
            str(work / "descriptions" / "descriptions.parquet"),
            "--batch-size",
            str(args.features_batch),
        ],
        "loader": [sys.executable, __file__, "--stage", "loader"],
        "scales": [sys.executable, __file__, "--stage", "scales"],
    }
    for stage in STAGES:
        before = result["stages"].get(stage, {})
        if before.get("done"):
            continue
        command = commands[stage]
        if stage in OUTS:
            command += ["--out", str(work / OUTS[stage]), "--metrics"]
            command += [str(work / "metrics" / f"{stage}.json"), "--params", str(params)]
        else:
            command += ["--work", str(work)]
        print(f"{stage}: {' '.join(command)}", flush=True)

        def tick(partial: dict, stage: str = stage, before: dict = before) -> None:
            result["stages"][stage] = combined(before, partial) | {"done": False}
            save()

        record = combined(before, measured(command, work / f"{stage}.log", tick))
        if stage in OUTS:
            counts = json.loads((work / "metrics" / f"{stage}.json").read_text())
            record["counts"] = counts
            record["inputs"] = counts["inputs"]
            record["bytes_per_sample"] = disk(work / OUTS[stage]) / counts["inputs"]
        else:
            record["inputs"] = yaml.safe_load(params.read_text())["scales"]["5M"]
            record["output"] = json.loads((work / f"{stage}.log").read_text().splitlines()[-1])
        record["samples_per_s"] = record["inputs"] / record["seconds"]
        result["stages"][stage] = record | {"done": True, "commit": commit()}
        if stage == "describe":
            result["scales"] = set_scales(params, counts["described"])
        save()
        print(
            f"  {record['inputs']:>9} samples in {record['seconds']:8.1f} s: "
            f"{record['samples_per_s']:8.0f}/s, peak RSS {record['peak_rss_mib']:6.0f} MiB "
            f"(tree {record['peak_tree_mib']:6.0f} MiB)"
            + (
                f", {record['bytes_per_sample']:.0f} B/sample"
                if "bytes_per_sample" in record
                else ""
            ),
            flush=True,
        )
    print(f"wrote {out}")
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
