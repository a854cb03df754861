"""The `objectstore` DVC remote against a real S3 endpoint on loopback (moto's server standing in
for MinIO): push the prepared data, lose it and the cache, pull it back bit for bit."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from tests.conftest import set_small_world, sh

KEY, SECRET = "regionedit-test", "regionedit-test-secret"


@pytest.fixture
def object_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An S3 endpoint with an empty `dvc` bucket; its URL. This machine's AWS config stays out."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    s3(url).create_bucket(Bucket="dvc")
    yield url
    server.stop()


def s3(url: str):
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )


def file_digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.md5(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def locked_md5(repo: Path) -> str:
    outs = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["prepare"]["outs"]
    return next(out["md5"] for out in outs if out["path"] == "data/prepared")


@pytest.mark.slow
def test_prepared_data_round_trips_through_the_object_store(repo: Path, object_store: str):
    set_small_world(repo, world__scenes=2)
    sh(repo, "dvc", "repro", "prepare")
    prepared, md5 = file_digests(repo / "data" / "prepared"), locked_md5(repo)
    assert "manifest.parquet" in prepared

    # the endpoint and credentials go to the gitignored .dvc/config.local, never to .dvc/config
    for option, value in [
        ("endpointurl", object_store),
        ("access_key_id", KEY),
        ("secret_access_key", SECRET),
    ]:
        sh(repo, "dvc", "remote", "modify", "--local", "objectstore", option, value)
    assert SECRET not in (repo / ".dvc" / "config").read_text()
    sh(repo, "git", "check-ignore", "-q", ".dvc/config.local")

    sh(repo, "dvc", "push", "-r", "objectstore", "prepare")
    listed = s3(object_store).list_objects_v2(Bucket="dvc")["Contents"]
    # content-addressed: every file by its md5, and the directory listing by the md5 in dvc.lock
    assert {item["Key"] for item in listed} == {
        f"files/md5/{digest[:2]}/{digest[2:]}" for digest in [*prepared.values(), md5]
    }
    status = sh(repo, "dvc", "status", "--cloud", "-r", "objectstore", "prepare").stdout
    assert "in sync" in status

    shutil.rmtree(repo / "data" / "prepared")
    shutil.rmtree(repo / ".dvc" / "cache")
    sh(repo, "dvc", "pull", "-r", "objectstore", "prepare")
    assert file_digests(repo / "data" / "prepared") == prepared
    assert locked_md5(repo) == md5
    assert "up to date" in sh(repo, "dvc", "status", "prepare").stdout
