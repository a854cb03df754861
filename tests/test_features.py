"""The `features` stage and training from its cache: counts, shapes, resume, clear errors, and
the same losses as computing the frozen features in every step, without running those encoders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors import safe_open
from torch.utils.data import DataLoader
from typer.testing import CliRunner

from components.features.index import INDEX_FILE, SHARDS, FeatureCache, cache_settings
from components.features.shards import (
    cache_shard,
    features_identity,
    finish,
    plan_features,
)
from components.features.store import (
    FeaturesError,
    ShardFeatures,
    shard_metadata,
    shard_tensors,
    write_shard,
)
from components.method.build import build_frozen_parts, build_region_edit_model
from components.method.features import cacheable_features
from components.training.data import (
    CachedCollate,
    Description,
    ScaleStream,
    check_cached,
    scale_of,
    scale_samples,
)
from components.training.fit import ScaleRun, fit_scale
from flows.cli import app
from flows.features import features_flow
from tests.test_training import SHARD_SIZE, write_training_data

REJECTED = 2  # the first samples of shard 1 are rejected by describe, the next one absent
INSTRUCTIONS = ("make it blue", "turn the whole scene into a snowy winter night")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    """The training tests' shards (of 7, 7, 7, 7 and 1 samples) with instructions of two
    lengths, all described but three: two rejected, one never described."""
    prepared, descriptions = write_training_data(tmp_path_factory.mktemp("features-data"))
    described = pd.read_parquet(descriptions)
    described["t_ins"] = [INSTRUCTIONS[i % 2] for i in range(len(described))]
    described.loc[SHARD_SIZE : SHARD_SIZE + REJECTED - 1, "status"] = "rejected"
    described.drop(index=SHARD_SIZE + REJECTED).to_parquet(descriptions)
    return prepared, descriptions


@pytest.fixture(scope="module")
def cache(data, zoo_params, tmp_path_factory, prefect_harness) -> Path:
    """The features stage's output for `data`, through its flow."""
    out = tmp_path_factory.mktemp("features") / "features"
    features_flow(*data, out, zoo_params, out / "metrics.json", batch_size=4)
    return out


def frozen(params):
    return lambda: build_frozen_parts(params.models, params.method.instruction_tokens)


def batch_from(cache: Path, data, params, size: int = 4) -> dict:
    """A training batch as the data module yields it, with the cached features."""
    features = FeatureCache(cache, cache_settings(params.models, params.method))
    scale = scale_of(*data, count=size, seed=0, name="test")
    stream = ScaleStream(scale, data[0] / "shards", 64, 0, 0, size, features=features)
    loader = DataLoader(stream, batch_size=size, collate_fn=CachedCollate(features.unconditional()))
    return next(iter(loader))


def test_the_stage_caches_every_described_sample_once_and_counts_the_rest(cache, data):
    metrics = json.loads((cache / "metrics.json").read_text())
    assert metrics["inputs"] == 29 and metrics["cached"] == 26 and metrics["skipped"] == 3
    assert metrics["skipped_by_reason"] == {"not_described": 1, "rejected_by_describe": 2}
    assert metrics["shards"] == 5 and metrics["bytes_per_sample"] > 0
    index = json.loads((cache / INDEX_FILE).read_text())
    manifest = pd.read_parquet(data[0] / "manifest.parquet")
    ok = pd.read_parquet(data[1]).query("status == 'ok'")["key"]
    keys = []
    for shard, name in sorted(index["shards"].items()):
        with safe_open(cache / SHARDS / name, "pt") as handle:
            shard_keys = shard_metadata(handle)["keys"]
            n = len(shard_keys)
            assert handle.get_slice("t_o").get_shape() == [n, 32]
            assert handle.get_slice("t_e").get_shape() == [n, 32]
            assert handle.get_slice("prompt").get_shape() == [n, 77, 32]
            assert handle.get_slice("z_src").get_shape() == [n, 4, 8, 8]
            offsets = handle.get_tensor("ins_offsets")
            assert handle.get_slice("f_ins").get_shape() == [int(offsets[-1]), 32]
            assert handle.get_tensor("prompt").dtype == torch.float16
        assert shard_keys == [k for k in manifest[manifest.shard == shard].key if k in set(ok)]
        keys += shard_keys
    assert sorted(keys) == sorted(ok)  # one entry per described sample, none twice


def test_cached_features_are_the_on_the_fly_ones_in_float16(cache, data, zoo_params):
    encoders, generator = frozen(zoo_params)()
    batch = batch_from(cache, data, zoo_params)
    fresh = cacheable_features(
        encoders, generator, batch["image"], batch["t_o"], batch["t_ins"], batch["t_e"], 64
    )
    stored = batch["cached"]
    for name in ("t_o", "t_e", "z_src"):
        expected = getattr(fresh, name)
        torch.testing.assert_close(getattr(stored, name).float(), expected, rtol=1e-3, atol=1e-3)
    for name in ("prompt", "unconditional"):
        assert set(getattr(stored, name)) == set(getattr(fresh, name)) == {"prompt"}
        torch.testing.assert_close(
            getattr(stored, name)["prompt"].float(),
            getattr(fresh, name)["prompt"],
            rtol=1e-3,
            atol=1e-3,
        )
    assert torch.equal(stored.ins_padding, fresh.ins_padding)  # same lengths, padded alike
    real = ~fresh.ins_padding
    torch.testing.assert_close(stored.f_ins.float()[real], fresh.f_ins[real], rtol=1e-3, atol=1e-3)


def test_a_cached_forward_gives_the_uncached_losses(cache, data, zoo_params):
    torch.manual_seed(0)
    model = build_region_edit_model(zoo_params.models, zoo_params.method)
    batch = batch_from(cache, data, zoo_params)
    args = (batch["image"], batch["t_o"], batch["t_ins"], batch["t_e"])
    uncached = model(*args, torch.Generator().manual_seed(0))
    in_memory = cacheable_features(model.encoders, model.generator, *args, 64)
    exact = model(*args, torch.Generator().manual_seed(0), cached=in_memory)
    assert all(torch.equal(exact.terms[k], uncached.terms[k]) for k in uncached.terms)
    stored = model(*args, torch.Generator().manual_seed(0), cached=batch["cached"])
    tau = zoo_params.method.tau
    assert torch.equal(stored.p_region > tau, uncached.p_region > tau)
    for name, value in uncached.terms.items():  # float16 storage: ~1e-4 apart on these models
        torch.testing.assert_close(stored.terms[name], value, rtol=1e-3, atol=1e-3)


def test_a_training_step_from_the_cache_runs_no_frozen_text_or_source_encoder(
    cache, data, zoo_params
):
    model = build_region_edit_model(zoo_params.models, zoo_params.method)
    calls = {"t5": 0, "clip_text": 0, "sd_text": 0, "vae_encoder": 0, "clip_image": 0}
    watched = {
        "t5": model.encoders.t5_encoder,
        "clip_text": model.encoders.clip.transformer,
        "sd_text": model.generator.frozen_modules()["text_encoder"],
        "vae_encoder": model.generator.vae.encoder,
        "clip_image": model.encoders.clip.visual,
    }
    for name, module in watched.items():
        module.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    batch = batch_from(cache, data, zoo_params)
    args = (batch["image"], batch["t_o"], batch["t_ins"], batch["t_e"])
    out = model(*args, torch.Generator().manual_seed(0), cached=batch["cached"])
    out.terms["total"].backward()
    # CLIP sees the source and the result; the VAE encodes only the masked source ("exact");
    # on the fly: T_o and T_e, t_e and the empty prompt, z_src and the masked source
    assert calls == {"t5": 0, "clip_text": 0, "sd_text": 0, "vae_encoder": 1, "clip_image": 2}
    calls.update(dict.fromkeys(calls, 0))
    model(*args, torch.Generator().manual_seed(0))
    assert calls == {"t5": 1, "clip_text": 2, "sd_text": 2, "vae_encoder": 2, "clip_image": 2}


def cached_and_uncached_curves(params, data, cache: Path, steps: int, out: Path) -> dict:
    """The loss curves of `steps` training steps at batch 2 on 4 samples, with features from
    `cache` and computed in every step."""
    params = params.model_copy(
        update={
            "scales": {"1M": 4},
            "train": params.train.model_copy(
                update={"max_steps": steps, "batch_size": 2, "out": str(out)}
            ),
        }
    )
    curves = {}
    for name, features in (("uncached", None), ("cached", cache)):
        run = ScaleRun("1M", *data, out / name, out / f"{name}.csv", None, None, features)
        fit_scale(params, run, resume=False)
        curves[name] = pd.read_csv(run.loss_curve).set_index("step")
    return curves


def test_training_from_the_cache_reaches_the_uncached_losses(cache, data, zoo_params, tmp_path):
    curves = cached_and_uncached_curves(zoo_params, data, cache, 3, tmp_path)
    assert list(curves["cached"].index) == [1, 2, 3]
    pd.testing.assert_frame_equal(curves["cached"], curves["uncached"], rtol=1e-3, atol=1e-3)


def test_a_rerun_skips_finished_shards_and_resumes_a_killed_one(data, zoo_params, tmp_path):
    out = tmp_path / "features"
    identity = features_identity(zoo_params.models, zoo_params.method)
    plans = list(plan_features(*data, identity))
    loads = []

    def counted_frozen():
        loads.append(1)
        return frozen(zoo_params)()

    first, second = [p for p in plans if p.file][:2]
    assert not cache_shard(first, data[0], out, counted_frozen, 64, 64, 4)  # then the run died
    (out / SHARDS / f".{second.file}.partial").write_bytes(b"half a file")
    done = (out / SHARDS / first.file).stat().st_mtime_ns
    reused = [cache_shard(p, data[0], out, counted_frozen, 64, 64, 4) for p in plans]
    assert reused[plans.index(first)] and not reused[plans.index(second)]
    assert (out / SHARDS / first.file).stat().st_mtime_ns == done
    summary = finish(out, [p.entry for p in plans], identity, None)
    assert summary.cached == 26 and summary.inputs == summary.cached + summary.skipped
    assert sorted(p.name for p in (out / SHARDS).iterdir()) == sorted(
        p.file for p in plans if p.file
    )  # the killed run's partial file is gone
    assert all(cache_shard(p, data[0], out, counted_frozen, 64, 64, 4) for p in plans)
    smaller = zoo_params.method.model_copy(update={"resolution": 32})
    other = features_identity(zoo_params.models, smaller)
    assert {p.file for p in plan_features(*data, other)}.isdisjoint(p.file for p in plans)


def test_missing_and_corrupt_inputs_are_named(data, cache, zoo_params, tmp_path):
    identity = features_identity(zoo_params.models, zoo_params.method)
    with pytest.raises(FeaturesError, match=r"nowhere\.parquet: missing; run `regionedit describe"):
        next(plan_features(data[0], tmp_path / "nowhere.parquet", identity))
    broken = tmp_path / "prepared"
    shutil.copytree(data[0], broken)
    plan = next(p for p in plan_features(broken, data[1], identity) if p.file)
    (broken / "shards" / plan.shard).unlink()  # a damaged one: tests/test_corrupt_shards.py
    with pytest.raises(FeaturesError, match=rf"{plan.shard}: missing shard"):
        cache_shard(plan, broken, tmp_path / "out", frozen(zoo_params), 64, 64, 4)

    settings = cache_settings(zoo_params.models, zoo_params.method)
    check_cached(scale_of(*data, count=4, seed=0, name="test"), FeatureCache(cache, settings))
    described = pd.read_parquet(data[1])
    first = scale_samples(*data, count=1, seed=0, scale="test")["key"].iloc[0]
    described.loc[described["key"] == first, "t_e"] = "a description written after the cache"
    described.to_parquet(tmp_path / "rewritten.parquet")
    rewritten = scale_of(data[0], tmp_path / "rewritten.parquet", count=4, seed=0, name="test")
    with pytest.raises(FeaturesError, match="features of other descriptions for 1 sample"):
        check_cached(rewritten, FeatureCache(cache, settings))

    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    name = next(iter(json.loads((copy / INDEX_FILE).read_text())["shards"].values()))
    (copy / SHARDS / name).write_bytes(b"not a safetensors file")
    with pytest.raises(FeaturesError, match=rf"{name}: unreadable feature file"):
        ShardFeatures(copy / SHARDS / name)
    other = zoo_params.method.model_copy(update={"resolution": 32})
    with pytest.raises(FeaturesError, match="built with other resolution"):
        FeatureCache(copy, cache_settings(zoo_params.models, other))
    cheaper = zoo_params.method.model_copy(update={"train_resolution": 32})  # z_src's side
    with pytest.raises(FeaturesError, match="built with other z_src_resolution than"):
        FeatureCache(copy, cache_settings(zoo_params.models, cheaper))
    (copy / INDEX_FILE).unlink()
    with pytest.raises(FeaturesError, match=rf"{INDEX_FILE}: no feature cache here"):
        FeatureCache(copy, cache_settings(zoo_params.models, zoo_params.method))


def test_the_features_command(data, zoo_params, tmp_path, prefect_harness):
    settings = tmp_path / "params.yaml"
    settings.write_text(json.dumps(zoo_params.model_dump(mode="json")))
    command = ["--data", str(data[0]), "--descriptions", str(data[1]), "--params", str(settings)]
    result = CliRunner().invoke(app, ["features", *command, "--out", str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    assert "inputs 29 · cached 26 · skipped 3" in result.output
    missing = CliRunner().invoke(
        app,
        [
            "features",
            *command[:2],
            "--descriptions",
            str(tmp_path / "none.parquet"),
            "--params",
            str(settings),
            "--out",
            str(tmp_path / "g"),
        ],
    )
    assert missing.exit_code == 2 and "none.parquet: missing" in missing.output


def test_the_train_command_names_a_missing_cache(data, zoo_params, tmp_path, prefect_harness):
    settings = tmp_path / "params.yaml"
    settings.write_text(json.dumps(zoo_params.model_dump(mode="json")))
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--scale",
            "1M",
            "--prepared",
            str(data[0]),
            "--descriptions",
            str(data[1]),
            "--features",
            str(tmp_path / "absent"),
            "--params",
            str(settings),
        ],
    )
    assert result.exit_code == 2
    assert f"{tmp_path / 'absent' / INDEX_FILE}: no feature cache here" in result.output


def test_a_shard_file_has_the_same_bytes_every_time_it_is_written(tmp_path):
    """DVC hashes the cache: identical features must give identical files."""
    tensors = {"t_o": torch.arange(6, dtype=torch.float16).reshape(2, 3)}
    written = []
    for i in range(6):
        path = tmp_path / f"shard-{i}.safetensors"
        write_shard(path, ["b", "a"], [1, 2], tensors, {"cached": 2, "skipped": {}}, [])
        written.append(path.read_bytes())
    assert len(set(written)) == 1
    with safe_open(tmp_path / "shard-0.safetensors", "pt") as handle:
        assert shard_metadata(handle) == {
            "keys": ["b", "a"],
            "counts": {"cached": 2, "skipped": {}},
        }


def test_the_mapped_reader_reads_what_safetensors_wrote(tmp_path):
    """ShardFeatures reads shard files through its own memory map (safetensors' reader keeps an
    object alive per tensor it returns): every tensor, the header and a sample's rows must be
    what safetensors itself reads, and a cut file must fail at open."""
    generator = torch.Generator().manual_seed(0)
    tensors = {
        "t_o": torch.randn(3, 4, generator=generator).half(),
        "t_e": torch.randn(3, 4, generator=generator).half(),
        "z_src": torch.randn(3, 2, 2, 2, generator=generator).half(),
        "prompt": torch.randn(3, 5, 4, generator=generator).half(),
        "f_ins": torch.randn(6, 4, generator=generator).half(),
        "ins_offsets": torch.tensor([0, 1, 4, 6]),
    }
    path = tmp_path / "shard.safetensors"
    write_shard(path, ["c", "a", "b"], [7, -8, 9], tensors, {"cached": 3, "skipped": {}}, ["d"])
    shard = ShardFeatures(path)
    with safe_open(path, "pt") as handle:
        names = handle.keys()
        assert sorted(shard.handle.keys()) == sorted(names)
        for name in names:
            assert torch.equal(shard.handle.get_tensor(name), handle.get_tensor(name)), name
        assert shard_metadata(shard.handle) == shard_metadata(handle)
    sample = shard.sample("a")
    assert torch.equal(sample["z_src"], tensors["z_src"][1])
    assert torch.equal(sample["prompt"], tensors["prompt"][1])
    assert torch.equal(sample["f_ins"], tensors["f_ins"][1:4])
    assert shard.texts == [7, -8, 9] and shard.unreadable == {"d"}
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(FeaturesError, match="unreadable feature file .*where the header describes"):
        ShardFeatures(path)
    empty = tmp_path / "empty.safetensors"  # every image of the shard was unreadable
    write_shard(empty, [], [], shard_tensors([]), {"cached": 0, "skipped": {}}, ["e"])
    nothing = ShardFeatures(empty)
    assert nothing.texts == [] and nothing.offsets == [0] and nothing.unreadable == {"e"}


def test_a_compact_scale_holds_the_samples_of_the_table(data):
    for count in (1, 7, 26):
        table = scale_samples(*data, count=count, seed=3, scale="test")
        scale = scale_of(*data, count=count, seed=3, name="test")
        assert sorted(scale.keys.astype(str)) == sorted(table["key"]) and len(scale) == count
        assert scale.per_shard == table["shard"].value_counts().to_dict()
        for shard, rows in table.groupby("shard"):
            described = scale.descriptions_of(shard)
            assert set(described) == set(rows["key"])
            row = rows.iloc[0]
            assert described[row.key] == Description(row.t_o, row.t_ins, row.t_e)
