"""Describing prepared shards: counts add up, parts are cached and resumed, garbage is rejected."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from components.config import DescribeConfig
from components.data.images import ImageLimits
from components.data.prepare import prepare_dataset
from components.data.scenes import scene
from components.data.sources import open_source
from components.describe.backends import TemplateBackend, build_backend
from components.describe.describer import Describer
from components.describe.errors import DescribeError
from components.describe.interface import Decoding
from components.describe.merge import merge_parts
from components.describe.shards import describe_shard, plan_shards


def prepare_demo(out: Path, scenes: int = 4, per_shard: int = 8) -> Path:
    """The 21 demo photographs and `scenes` generated scenes, `per_shard` samples a shard."""
    records = open_source("demo", "image", "caption", scenes, 0)
    prepare_dataset(records, out, ImageLimits(64, 50_000_000), per_shard, 1, progress=False)
    return out


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    return prepare_demo(tmp_path_factory.mktemp("describe") / "prepared")


def describe_all(prepared: Path, out: Path, describer: Describer, limit: int | None = None):
    works = plan_shards(prepared / "manifest.parquet", describer.identity(), limit)
    results = [describe_shard(work, prepared, out / "parts", describer) for work in works]
    return works, results, merge_parts(out, works)


TEMPLATE = Describer(TemplateBackend(), DescribeConfig(), seed=0)


def test_template_describes_every_sample_in_manifest_order(prepared, tmp_path):
    works, results, summary = describe_all(prepared, tmp_path, TEMPLATE)
    manifest = pd.read_parquet(prepared / "manifest.parquet")
    described = pd.read_parquet(tmp_path / "descriptions.parquet")
    assert summary.line() == "inputs 25 · described 25 · rejected 0"
    assert (len(works), summary.shards) == (4, 4) and not any(r.reused for r in results)
    assert list(described["key"]) == list(manifest["key"])
    assert list(described["t_o"]) == list(manifest["caption"])
    assert set(described["status"]) == {"ok"} and set(described["backend"]) == {"template"}
    assert described["prompt_version"].isna().all() and set(described["attempts"]) == {1}
    assert (described["t_e"] != described["t_o"]).all()
    assert json.loads((tmp_path / "describe_metrics.json").read_text())["described"] == 25


def test_rerun_reuses_every_part_and_writes_the_same_bytes(prepared, tmp_path):
    describe_all(prepared, tmp_path, TEMPLATE)
    first = (tmp_path / "descriptions.parquet").read_bytes()
    _, results, _ = describe_all(prepared, tmp_path, TEMPLATE)
    assert all(r.reused for r in results)
    assert (tmp_path / "descriptions.parquet").read_bytes() == first


def test_a_failed_shard_resumes_without_duplicates_or_losses(prepared, tmp_path):
    works = plan_shards(prepared / "manifest.parquet", TEMPLATE.identity())
    (tmp_path / "parts" / works[2].part).mkdir(parents=True)  # its part cannot be written
    for work in works[:2]:
        describe_shard(work, prepared, tmp_path / "parts", TEMPLATE)
    with pytest.raises(IsADirectoryError):
        describe_shard(works[2], prepared, tmp_path / "parts", TEMPLATE)
    (tmp_path / "parts" / works[2].part).rmdir()  # the fault goes away; the run is repeated
    _, results, summary = describe_all(prepared, tmp_path, TEMPLATE)
    assert [r.reused for r in results] == [True, True, False, False]
    described = pd.read_parquet(tmp_path / "descriptions.parquet")
    assert described["key"].is_unique and len(described) == summary.inputs == 25
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == sorted(w.part for w in works)


def test_limit_and_changed_settings_get_parts_of_their_own(prepared, tmp_path):
    works, _, summary = describe_all(prepared, tmp_path, TEMPLATE, limit=10)
    assert summary.inputs == 10 and [w.samples for w in works] == [8, 2]
    full = plan_shards(prepared / "manifest.parquet", TEMPLATE.identity())
    assert works[0].part == full[0].part and works[1].part != full[1].part
    other = Describer(TemplateBackend(), DescribeConfig(max_chars=200), seed=0)
    _, results, _ = describe_all(prepared, tmp_path, other, limit=10)
    assert not any(r.reused for r in results)
    assert len(list((tmp_path / "parts").iterdir())) == 2  # the first run's parts are gone


@pytest.fixture(scope="module")
def writer(zoo_params) -> Describer:
    cfg = DescribeConfig(backend="transformers", max_attempts=2, max_new_tokens=12, batch_size=4)
    return Describer(build_backend(cfg, zoo_params.models), cfg, seed=0)


def test_tiny_llm_garbage_is_retried_then_rejected_with_reasons(prepared, tmp_path, writer):
    works, _, summary = describe_all(prepared, tmp_path, writer, limit=6)
    assert summary.inputs == summary.described + summary.rejected == 6
    assert summary.rejected_by_reason == {"not_json": 6}
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [r["key"] for r in rejected] == list(
        pd.read_parquet(tmp_path / "descriptions.parquet")["key"]
    )
    assert {(r["stage"], r["attempts"]) for r in rejected} == {("edit", 2)}
    assert all(r["answer"] and r["detail"] for r in rejected)


def test_retries_sample_with_seeds_and_batches_equal_single_prompts(writer):
    captions = ["a cat on a sofa", "a small red circle at the top left on a green background"]
    greedy = writer.backend.write_edits(captions, Decoding(False, 0, 0.7, 12))
    assert greedy == [
        writer.backend.write_edits([c], Decoding(False, 0, 0.7, 12))[0] for c in captions
    ]
    once = Describer(writer.backend, writer.cfg.model_copy(update={"max_attempts": 1})).edits(
        captions
    )
    twice = writer.edits(captions)
    assert [o.answer for o in once] == greedy
    assert [o.answer for o in twice] != greedy  # the retry sampled, with a new seed
    assert [o.answer for o in writer.edits(captions)] == [o.answer for o in twice]


def test_tiny_mllm_recaptions_and_its_garbage_is_rejected(prepared, tmp_path, zoo_params):
    cfg = DescribeConfig(backend="transformers", recaption=True, max_attempts=2, max_new_tokens=8)
    describer = Describer(build_backend(cfg, zoo_params.models), cfg, seed=0)
    _, _, summary = describe_all(prepared, tmp_path, describer, limit=3)
    assert (summary.inputs, summary.rejected, summary.captioned) == (3, 3, 3)
    described = pd.read_parquet(tmp_path / "descriptions.parquet")
    assert set(described["t_o_source"]) == {"captioner"} and described["t_o"].isna().all()
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert {(r["stage"], r["reason"], r["attempts"]) for r in rejected} == {
        ("caption", "not_json", 2)
    }
    with pytest.raises(DescribeError, match="could not describe the image: 2 answer.*not_json"):
        describer.describe_image(scene(0, 0)[0].convert("L"))


def test_unusable_captions_are_rejected_when_the_backend_cannot_caption(prepared, tmp_path):
    short = Describer(TemplateBackend(), DescribeConfig(max_chars=60), seed=0)
    _, _, summary = describe_all(prepared, tmp_path, short)
    manifest = pd.read_parquet(prepared / "manifest.parquet")
    long_captions = int((manifest["caption"].str.len() > 60).sum())
    assert 0 < long_captions < summary.inputs == summary.described + summary.rejected == 25
    assert summary.rejected_by_reason["no_caption"] == long_captions
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    no_caption = [r for r in rejected if r["reason"] == "no_caption"]
    assert {(r["stage"], r["attempts"]) for r in no_caption} == {("caption", 0)}
    assert "cannot caption" in no_caption[0]["detail"]
