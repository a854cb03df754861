"""benchmarks/train_step.py on the tiny zoo: FLOPs counted without computing equal computed ones,
and the ladder's FLOPs follow the settings (K, cached features, composition, masked latent);
a short timed run fills seconds, samples/s and peaks per component."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def train_step():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import train_step

        yield train_step
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def params_file(zoo_params, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(yaml.safe_dump(zoo_params.model_dump(mode="json")), encoding="utf-8")
    return path


def run(train_step, params_file: Path, out: Path, *options: str) -> dict:
    argv = ["--size", "tiny", "--params", str(params_file), "--json", str(out), *options]
    report = train_step.main(argv)
    assert json.loads(out.read_text()) == report
    return {entry["name"]: entry for entry in report["settings"]}


def components(entry: dict, kind: str = "training_step") -> dict[str, int]:
    return {name: row["flops"] for name, row in entry[kind]["components"].items()}


def test_flops_follow_the_settings(train_step, params_file, zoo_params, tmp_path):
    names = [
        "baseline",
        "cached features",
        "K=8 DPM-Solver++",
        "K=4 DPM-Solver++",
        "approx masked latent",
        "latent composition",
        "compiled UNet",
    ]
    batch = 2
    settings = run(
        train_step, params_file, tmp_path / "flops.json",
        "--flops-only", "--batch", str(batch), "--settings", ",".join(names),
    )  # fmt: skip
    assert list(settings) == names
    for name in names[:-1]:
        entry = settings[name]
        step, edit = entry["training_step"], entry["edit"]
        assert set(step["components"]) == {*train_step.STEP_PARTS, "backward"}
        assert step["flops"] == sum(components(entry).values())
        assert step["flops_per_sample"] == step["flops"] / batch
        assert edit["flops"] == sum(components(entry, "edit").values())
        assert "seconds" not in step and "median_seconds" not in step["components"]["head"]
    assert "GPU" in settings["compiled UNet"]["skipped"]

    base, cached = components(settings["baseline"]), components(settings["cached features"])
    assert cached["encoders"] < base["encoders"]  # only CLIP's image tower is left
    assert {k: v for k, v in cached.items() if k != "encoders"} == {
        k: v for k, v in base.items() if k != "encoders"
    }
    assert components(settings["cached features"], "edit") == components(
        settings["baseline"], "edit"
    )  # an edit has nothing cached

    # Generation = K guided UNet calls (+ one VAE encode of the masked image when exact): linear
    # in K, and the approximate masked latent leaves the UNet calls alone.
    generation = {name: components(settings[name])["generation"] for name in names[:5]}
    unet_calls_4 = generation["approx masked latent"]  # K = 4, no encode
    assert generation["K=8 DPM-Solver++"] - generation["K=4 DPM-Solver++"] == unet_calls_4
    assert generation["K=4 DPM-Solver++"] > unet_calls_4
    assert zoo_params.method.steps == 2  # the baseline's K
    assert generation["K=4 DPM-Solver++"] - generation["cached features"] == unet_calls_4 // 2

    # Latent composition decodes with autograd: the decoder's backward is extra work.
    pixel, latent = (
        components(settings["approx masked latent"]),
        components(settings["latent composition"]),
    )
    assert settings["latent composition"]["vs"] == "approx masked latent"
    assert latent["backward"] > pixel["backward"]
    assert latent["generation"] == pixel["generation"]


def test_the_training_cost_ladder_cuts_only_the_training_steps_work(
    train_step, params_file, tmp_path
):
    names = [
        "paper-faithful training",
        "train K=1",
        "train K=4 unguided",
        "train K=4 at half resolution",
    ]
    settings = run(
        train_step, params_file, tmp_path / "cost.json",
        "--flops-only", "--batch", "2", "--ladder", "training-cost", "--settings", ",".join(names),
    )  # fmt: skip
    faithful = settings["paper-faithful training"]
    assert faithful["cached"] and faithful["method"].get("train_steps") is None
    for name in names[1:]:  # the edit is the profile's: its count is reused, not redone
        assert settings[name]["flops_reused"] == ["edit"]
        assert settings[name]["edit"] == faithful["edit"]
    step = {name: components(settings[name]) for name in names}
    generation = {name: parts["generation"] for name, parts in step.items()}
    # the tiny zoo's K is 2 with guidance (and one VAE encode of the masked image): K = 1 is one
    # guided UNet call fewer, K = 4 without guidance the same work as K = 2 with it
    one_call = generation["paper-faithful training"] - generation["train K=1"]
    assert 0 < generation["train K=1"] - one_call < one_call  # the encode is the rest
    assert generation["train K=4 unguided"] == generation["paper-faithful training"]
    half = step["train K=4 at half resolution"]
    assert settings["train K=4 at half resolution"]["method"]["train_resolution"] == 32
    assert half["generation"] < generation["train K=4 unguided"]  # K=4 guided at a quarter
    assert half["composition"] < step["paper-faithful training"]["composition"]  # decode at 32
    for part in ("encoders", "head", "clip_on_result"):  # CLIP and the head: at 64 px as before
        assert half[part] == step["paper-faithful training"][part]


def test_flops_counted_without_computing_equal_computed_flops(train_step, zoo_params):
    import torch
    from breakdown import FlopBreakdown

    from components.training.compute import flop_counter

    bench = train_step.load_bench(zoo_params, torch.device("cpu"), batch=2)
    method = zoo_params.method.model_copy(update=train_step.BASELINE)
    model = train_step.configured(bench, method)
    step = train_step.step_runner(model, bench, bf16=False, cached=False)
    computed = train_step.count_flops(step, compute=True)
    assert train_step.count_flops(step, compute=False) == computed
    with torch.utils.flop_counter.FlopCounterMode(display=False) as plain:
        step(FlopBreakdown(plain))
    with flop_counter() as counter:
        step(FlopBreakdown(counter))
    # torch's counter alone misses the CPU's fused attention kernel; ours counts it
    assert plain.get_total_flops() < counter.get_total_flops() == sum(computed.values())
    # settings marked same_flops are not recounted: check that they do the same arithmetic
    for change in ({"attention": "eager"}, {"channels_last": True}):
        other = train_step.configured(bench, method.model_copy(update=change))
        other_step = train_step.step_runner(other, bench, bf16=False, cached=False)
        assert train_step.count_flops(other_step, compute=True) == computed, change
    marked = {s.name for s in train_step.SETTINGS if s.same_flops}
    assert marked == {"bf16 autocast", "channels_last", "eager attention", "compiled UNet"}


@pytest.mark.parametrize("family", ["sdxl", "flux-fill"])
def test_generators_built_in_memory_with_hollow_weights_count_the_saved_ones_flops(
    train_step, zoo, zoo_params, family
):
    """The paper-size SDXL and FLUX counts rest on weights that are one expanded zero: at the
    zoo's tiny size they count what the saved folder's real weights compute."""
    import torch
    from paper_generators import paper_generator

    from components.random_models.build import GENERATOR_FOLDERS

    folder = str(zoo[GENERATOR_FOLDERS[family]])
    params = zoo_params.model_copy(
        update={"models": zoo_params.models.model_copy(update={"inpainting": folder})}
    )
    method = params.method.model_copy(update=train_step.BASELINE)
    cpu = torch.device("cpu")
    counts = []
    for generator in (None, paper_generator(family, cpu, hollow=True, size="tiny")):
        bench = train_step.load_bench(params, cpu, batch=2, generator=generator)
        model = train_step.configured(bench, method)
        assert model.generator.family == family
        step = train_step.step_runner(model, bench, bf16=False, cached=False)
        edit = train_step.edit_runner(model, bench, bf16=False)
        counts.append(
            [train_step.count_flops(run, compute=generator is None) for run in (step, edit)]
        )
    assert counts[1] == counts[0]
    assert counts[0][0]["generation"] > 0


def test_a_timed_run_reports_seconds_and_peaks_per_component(train_step, params_file, tmp_path):
    batch = 2
    settings = run(
        train_step, params_file, tmp_path / "timed.json",
        "--batch", str(batch), "--repeats", "1", "--settings", "baseline",
    )  # fmt: skip
    step, edit = settings["baseline"]["training_step"], settings["baseline"]["edit"]
    for report in (step, edit):
        rows = report["components"].values()
        assert all(row["median_seconds"] > 0 and row["peak_bytes"] > 0 for row in rows)
        assert report["seconds"] == pytest.approx(sum(row["median_seconds"] for row in rows))
    assert step["samples_per_second"] == pytest.approx(batch / step["seconds"])
    assert "paste_back" in edit["components"]
