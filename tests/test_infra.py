"""infra/: the compose file keeps every credential in the environment, never in the repo."""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT, sh

INFRA = ROOT / "infra"
REQUIRED = re.compile(r"\$\{(\w+):\?")
SECRET = re.compile(r"PASSWORD|SECRET|AUTH_STRING|ACCESS_KEY", re.IGNORECASE)


def test_every_credential_comes_from_the_environment():
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    assert {"postgres", "minio", "mlflow", "prefect"} <= set(compose["services"])
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET.search(key):
                assert str(value).startswith("${"), f"{name}.{key} is written in the file"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_env_example_names_every_required_variable_without_secret_values():
    lines = (INFRA / "compose.yaml").read_text().splitlines()
    required = {
        v for line in lines if not line.lstrip().startswith("#") for v in REQUIRED.findall(line)
    }
    example = dict(
        line.split("=", 1)
        for line in (INFRA / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert required <= set(example), required - set(example)
    assert all(value == "" for key, value in example.items() if SECRET.search(key))
    ignored = sh(ROOT, "git", "check-ignore", "infra/.env", check=False)
    assert ignored.returncode == 0, "infra/.env must be gitignored"


def test_the_mlflow_image_runs_the_script_the_tests_run():
    dockerfile = (INFRA / "mlflow" / "Dockerfile").read_text()
    assert "COPY serve.sh" in dockerfile and "serve.sh" in dockerfile.split("ENTRYPOINT")[1]
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    assert compose["services"]["mlflow"]["build"] == "./mlflow"
