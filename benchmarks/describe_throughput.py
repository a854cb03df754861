"""Benchmark `describe`: samples/s of batched generation vs one prompt at a time.

    python benchmarks/describe_throughput.py [--samples 64] [--batch-size 16] [--new-tokens 48]
                                             [--writer FOLDER_OR_ID] [--repeats 3]

Without --writer, the tiny random writer of the zoo is built in a temporary folder. The
transformers backend runs on CUDA when there is one; on a GPU with vLLM installed, vLLM is
measured the same way. Greedy decoding; the tiny model rarely emits an end-of-turn token, so
its answers run to about --new-tokens tokens either way.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

import torch

from components.data.scenes import scene
from components.describe.interface import ChatBackend, Decoding
from components.describe.prompts import load_prompts
from components.describe.transformers_chat import TransformersChat
from components.random_models.chat import build_writer


def samples_per_second(
    backend: ChatBackend, captions: list[str], decoding: Decoding, one_by_one: bool, repeats: int
) -> float:
    def run() -> None:
        if one_by_one:
            for caption in captions:
                backend.write_edits([caption], decoding)
        else:
            backend.write_edits(captions, decoding)

    run()  # warm-up: loading, kernels, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return len(captions) / statistics.median(times)


def report(name: str, batched: float, single: float, batch_size: int) -> None:
    print(
        f"  {name}: batched (batch {batch_size}) {batched:.1f} samples/s, "
        f"one prompt at a time {single:.1f} samples/s, ratio {batched / single:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--writer", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    captions = [scene(0, i)[1] for i in range(args.samples)]
    decoding = Decoding(sample=False, seed=0, temperature=0.7, max_new_tokens=args.new_tokens)
    prompts = load_prompts("v1")
    with tempfile.TemporaryDirectory() as tmp:
        writer = args.writer or str(build_writer(Path(tmp) / "writer", seed=0))
        device = "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
        print(
            f"describe: {args.samples} edit prompts, {args.new_tokens} new tokens, "
            f"writer {args.writer or 'tiny zoo'}, median of {args.repeats}, {device}"
        )
        backend = TransformersChat(prompts, writer, writer, args.batch_size)
        batched = samples_per_second(backend, captions, decoding, False, args.repeats)
        single = samples_per_second(backend, captions, decoding, True, args.repeats)
        report("transformers", batched, single, args.batch_size)
        if not (torch.cuda.is_available() and importlib.util.find_spec("vllm")):
            print("  vllm: not measured (needs a GPU and `pip install -e '.[vllm]'`)")
            return
        from components.describe.vllm_chat import VllmChat

        del backend
        torch.cuda.empty_cache()
        engine = VllmChat(prompts, writer, writer)
        batched = samples_per_second(engine, captions, decoding, False, args.repeats)
        single = samples_per_second(engine, captions, decoding, True, args.repeats)
        report("vllm", batched, single, len(captions))


if __name__ == "__main__":
    main()
