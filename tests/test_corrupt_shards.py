"""A damaged shard does not end a run: `describe`, `features` and training's loader log, skip and
count the samples it loses (a tar cut mid-file, one cut inside its only image, an image whose
bytes are noise in a valid tar), and go on; a resumed stream skips them exactly as before."""

from __future__ import annotations

import io
import itertools
import json
import logging
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
from safetensors import safe_open
from torch.utils.data import DataLoader

from components.features.index import INDEX_FILE, SHARDS, FeatureCache, cache_settings
from components.features.shards import cache_shard, features_identity, plan_features
from components.features.store import shard_metadata
from components.training.data import CachedCollate, ScaleStream, check_cached, scale_of
from components.training.fit import LAST
from components.training.module import skipped_samples
from flows.features import features_flow, frozen_parts_for
from flows.train import train_flow
from tests.test_describe_shards import TEMPLATE, describe_all
from tests.test_training import training_params, write_training_data

CUT = "shard-000001.tar"  # 7 samples, cut at half its size, inside a member
EMPTIED = "shard-000004.tar"  # 1 sample, cut inside its image
GARBLED = "shard-000002.tar"  # 7 samples, the third image's bytes replaced by noise
SAMPLES = 29
BATCH = 4


@dataclass(frozen=True)
class Damaged:
    intact: Path  # the prepared data before the damage
    described: Path  # describe's output folder for the intact data
    prepared: Path  # a copy of `intact` with three damaged shards
    lost: dict[str, list[str]]  # shard -> the keys whose image it no longer gives

    @property
    def descriptions(self) -> Path:
        """Written before the damage: the shards broke after describe ran."""
        return self.described / "descriptions.parquet"

    @property
    def lost_keys(self) -> set[str]:
        return {key for keys in self.lost.values() for key in keys}


def cut(tar: Path, size: int) -> list[str]:
    """Cut the tar at `size` bytes; returns the keys whose image does not end before the cut."""
    with tarfile.open(tar) as opened:
        images = [m for m in opened if m.name.endswith((".png", ".jpg"))]
    tar.write_bytes(tar.read_bytes()[:size])
    return [m.name.rpartition(".")[0] for m in images if m.offset_data + m.size > size]


def garble(tar: Path, index: int) -> str:
    """Replace the bytes of the tar's `index`-th image by noise of the same length, in a valid
    tar; returns its key."""
    with tarfile.open(tar) as opened:
        members = [(m, opened.extractfile(m).read()) for m in opened]
    target = [m for m, _ in members if m.name.endswith((".png", ".jpg"))][index]
    with tarfile.open(tar, "w", format=tarfile.USTAR_FORMAT) as rewritten:
        for member, data in members:
            noise = np.random.default_rng(0).bytes(len(data))
            rewritten.addfile(member, io.BytesIO(noise if member is target else data))
    return target.name.rpartition(".")[0]


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> Damaged:
    root = tmp_path_factory.mktemp("corrupt-shards")
    intact, _ = write_training_data(root)
    works, _, summary = describe_all(intact, root / "described", TEMPLATE)
    assert summary.described == SAMPLES and len(works) == 5
    prepared = root / "damaged"
    shutil.copytree(intact, prepared)
    shards = prepared / "shards"
    lost = {
        CUT: cut(shards / CUT, (shards / CUT).stat().st_size // 2),
        EMPTIED: cut(shards / EMPTIED, 700),
        GARBLED: [garble(shards / GARBLED, 2)],
    }
    assert 0 < len(lost[CUT]) < 7 and len(lost[EMPTIED]) == 1
    return Damaged(intact, root / "described", prepared, lost)


@pytest.fixture(scope="module")
def cache(damaged, zoo_params, tmp_path_factory, prefect_harness) -> Path:
    """The features stage's output for the damaged shards and the earlier descriptions."""
    out = tmp_path_factory.mktemp("corrupt-features") / "features"
    features_flow(damaged.prepared, damaged.descriptions, out, zoo_params, batch_size=BATCH)
    return out


def test_describe_rejects_the_lost_samples_and_describes_the_rest_as_before(
    damaged, tmp_path, caplog
):
    with caplog.at_level(logging.WARNING, "components.describe.shards"):
        works, _, summary = describe_all(damaged.prepared, tmp_path, TEMPLATE)
    lost = damaged.lost_keys
    assert summary.inputs == SAMPLES == summary.described + summary.rejected
    assert summary.rejected_by_reason == {"unreadable_image": len(lost)}
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert {r["key"] for r in rejected} == lost
    assert {(r["stage"], r["reason"], r["attempts"]) for r in rejected} == {
        ("image", "unreadable_image", 0)
    }
    detail = {r["key"]: r["detail"] for r in rejected}
    last_cut, garbled = damaged.lost[CUT][-1], damaged.lost[GARBLED][0]
    assert detail[last_cut].startswith(f"{CUT}: sample {last_cut}: the shard breaks off")
    assert detail[garbled].startswith(f"{GARBLED}: sample {garbled}: not a readable image")
    assert any(f"{GARBLED}: sample {garbled}" in message for message in caplog.messages)
    for work in works:  # the shards left alone give the very parts they gave before the damage
        if work.shard not in damaged.lost:
            part = (tmp_path / "parts" / work.part).read_bytes()
            assert part == (damaged.described / "parts" / work.part).read_bytes()


def test_features_skip_and_count_the_unreadable_samples(damaged, cache, zoo_params, caplog):
    metrics = json.loads((cache / "features_metrics.json").read_text())
    assert metrics["inputs"] == SAMPLES == metrics["cached"] + metrics["skipped"]
    assert metrics["skipped_by_reason"] == {"unreadable_image": len(damaged.lost_keys)}
    files = json.loads((cache / INDEX_FILE).read_text())["shards"]
    for shard, keys in damaged.lost.items():  # the empty shard's file included
        with safe_open(cache / SHARDS / files[shard], "pt") as handle:
            header = shard_metadata(handle)
        counts = header["counts"]
        assert header["unreadable"] == keys and damaged.lost_keys.isdisjoint(header["keys"])
        assert counts["cached"] == len(header["keys"]) == counts["inputs"] - len(keys)
        assert counts["skipped"] == {"unreadable_image": len(keys)}
    # the same shard into another folder: each lost sample is logged with its shard and key
    identity = features_identity(zoo_params.models, zoo_params.method)
    plans = plan_features(damaged.prepared, damaged.descriptions, identity)
    with caplog.at_level(logging.WARNING, "components.features.shards"):
        cache_shard(
            next(plan for plan in plans if plan.shard == GARBLED),
            damaged.prepared,
            cache.parent / "again",
            lambda: frozen_parts_for(zoo_params, "cpu"),  # the flow's, loaded already
            64,
            64,
            BATCH,
        )
    garbled = damaged.lost[GARBLED][0]
    assert any(
        message.startswith(f"{damaged.prepared / 'shards' / GARBLED}: sample {garbled} skipped")
        for message in caplog.messages
    )


def stream_batches(damaged, count: int, workers: int = 0, features=None, **resume) -> list[dict]:
    scale = scale_of(damaged.prepared, damaged.descriptions, SAMPLES, 0, "all")
    stream = ScaleStream(
        scale, damaged.prepared / "shards", 64, 0, 0, BATCH, features=features, **resume
    )
    collate = CachedCollate(features.unconditional() if features else None)
    loader = DataLoader(stream, batch_size=BATCH, num_workers=workers, collate_fn=collate)
    return list(itertools.islice(loader, count))


def test_the_loader_skips_counts_and_goes_on(damaged, cache, zoo_params, caplog):
    features = FeatureCache(cache, cache_settings(zoo_params.models, zoo_params.method))
    check_cached(
        scale_of(damaged.prepared, damaged.descriptions, SAMPLES, 0, "all"), features
    )  # the samples features skipped are no failure
    for cached in (None, features):
        with caplog.at_level(logging.WARNING, "components.training.data"):
            batches = stream_batches(damaged, 20, features=cached)
        keys = [key for batch in batches for key in batch["key"]]
        assert damaged.lost_keys.isdisjoint(keys) and len(keys) == 20 * BATCH
        skipped = [batch["skipped"] for batch in batches]
        assert skipped[0] and sum(skipped) > len(damaged.lost_keys)  # lost samples met again
        assert all(len(batch["image"]) == BATCH for batch in batches)
    garbled = damaged.lost[GARBLED][0]
    reports = [m for m in caplog.messages if f"sample {garbled} skipped" in m]
    assert len(reports) == 2 and GARBLED in reports[0]  # once per stream


def test_a_resumed_stream_continues_exactly_past_skipped_samples(damaged):
    for workers in (0, 2):
        full = stream_batches(damaged, 12, workers)
        streams = max(workers, 1)
        for start in (3, 7):  # after the first skips, and between workers' turns
            before = [sum(b["skipped"] for b in full[s:start:streams]) for s in range(streams)]
            resumed = stream_batches(damaged, 3, workers, start_batch=start, skipped_before=before)
            assert [b["key"] for b in resumed] == [b["key"] for b in full[start : start + 3]]
            assert [b["skipped"] for b in resumed] == [
                b["skipped"] for b in full[start : start + 3]
            ]


@pytest.fixture
def tracking(tmp_path, monkeypatch) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)


def test_a_short_fit_goes_past_the_damage_and_its_metrics_count_the_skips(
    damaged, zoo_params, tmp_path, tracking, prefect_harness
):
    skipped = [batch["skipped"] for batch in stream_batches(damaged, 10)]
    steps = next(i for i, n in enumerate(skipped) if n) + 2  # a step past the first skip
    params = training_params(zoo_params, tmp_path, max_steps=steps, batch_size=BATCH)
    params = params.model_copy(update={"scales": {"1M": SAMPLES}})
    assert params.seed == 0 and params.train.num_workers == 0  # the stream of stream_batches
    metrics = tmp_path / "metrics"
    train_flow(params, ["1M"], damaged.prepared, damaged.descriptions, metrics, tmp_path / "plots")
    summary = json.loads((metrics / "1M.json").read_text())
    assert summary["step"] == steps
    assert summary["data"] == {"skipped_samples": sum(skipped[:steps])}
    last = tmp_path / "checkpoints" / "1M" / LAST
    assert skipped_samples(last) == sum(skipped[:steps]) > 0
