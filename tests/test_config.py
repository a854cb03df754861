"""params.yaml is read once into typed objects; mistakes name the key and the file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from components.config import ConfigError, load_params

ROOT = Path(__file__).resolve().parents[1]
PROFILES = [
    "params.yaml",
    "infra/profiles/paper.yaml",
    "infra/profiles/paper-sdxl.yaml",
    "infra/profiles/paper-flux.yaml",
]


@pytest.mark.parametrize("path", PROFILES)
def test_shipped_profiles_parse(path):
    params = load_params(ROOT / path)
    assert list(params.scales) == ["1M", "2M", "3M", "4M", "5M"]


@pytest.mark.parametrize("path", PROFILES)
def test_every_key_dvc_yaml_interpolates_is_in_each_profile(path):
    """`use-profile` copies the profile to params.yaml; a `${key}` of dvc.yaml it lacks would
    stop DVC from reading the pipeline at all."""
    profile = yaml.safe_load((ROOT / path).read_text())
    for key in set(re.findall(r"\$\{([a-z_.]+)\}", (ROOT / "dvc.yaml").read_text())):
        if key.split(".")[0] in ("key", "item"):  # foreach / matrix loop variables
            continue
        node = profile
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"{path} lacks {key}"
            node = node[part]


def test_paper_profile_uses_paper_scales():
    assert load_params(ROOT / "infra/profiles/paper.yaml").scales["5M"] == 5_000_000


def test_unknown_key_is_named_with_the_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("prepare:\n  min_sid: 10\n")
    with pytest.raises(ConfigError, match=r"(?s)params\.yaml.*prepare\.min_sid: unknown key"):
        load_params(bad)


def test_wrong_type_is_named_with_the_file(tmp_path):
    bad = tmp_path / "custom.yaml"
    bad.write_text("prepare:\n  samples_per_shard: lots\n")
    with pytest.raises(ConfigError, match=r"(?s)custom\.yaml.*prepare\.samples_per_shard.*'lots'"):
        load_params(bad)


def test_scales_must_grow(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("scales:\n  1M: 10\n  2M: 5\n")
    with pytest.raises(ConfigError, match="scales"):
        load_params(bad)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_params(tmp_path / "nope.yaml")


def test_an_ablation_zeroes_its_losses_and_keeps_its_outputs_apart():
    params = load_params(ROOT / "params.yaml")
    ablated = params.ablate("no-semalign")
    assert ablated.ablation == "no-semalign"
    assert ablated.method.alpha == 0 and ablated.method.beta == params.method.beta
    assert ablated.train.out == f"{params.train.out}/ablations/no-semalign"
    assert ablated.evaluate.out == f"{params.evaluate.out}/ablations/no-semalign"
    with pytest.raises(ConfigError, match=r"unknown ablation 'no-such'.*no-clip"):
        params.ablate("no-such")


def test_ablation_settings_are_checked(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("ablations:\n  zero:\n    no-x: [gamma]\n")
    with pytest.raises(ConfigError, match=r"(?s)ablations\.zero.*'no-x'.*alpha"):
        load_params(bad)
    bad.write_text("ablations:\n  scale: 9M\n")  # read only when an ablation runs
    with pytest.raises(ConfigError, match="ablations.scale '9M'"):
        load_params(bad).ablate("no-clip")
    bad.write_text("ablation: no-clip\n")  # set by hand: its loss weight is not zeroed
    with pytest.raises(ConfigError, match="set by --ablation"):
        load_params(bad)
