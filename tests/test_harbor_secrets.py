"""The shared-secrets bootstrap: nodes booting at the same time against one Secrets Manager end with
byte-identical Harbor secrets, and exactly one secret holds them (run against a moto server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from harbor_ha.harbor_boot import script_path
from conftest import require_tool

REGION = "us-east-1"
SECRET_NAME = "harbor-ha/test/harbor-shared-secrets"


@pytest.fixture(scope="module")
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
           "AWS_ENDPOINT_URL": moto_endpoint}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_endpoint)
    for secret in client.list_secrets()["SecretList"]:
        client.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
    key_id = boto3.client("kms", region_name=REGION, endpoint_url=moto_endpoint).create_key()["KeyMetadata"]["KeyId"]
    return client, key_id


def _start(node: Path, key_id: str) -> subprocess.Popen:
    require_tool("openssl")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # venv's aws
           "SHARED_SECRET_NAME": SECRET_NAME,
           "SHARED_SECRET_KMS_KEY": key_id, "HARBOR_HOSTNAME": "registry.example.com",
           "HARBOR_SECRET_DIR": str(node / "data" / "secret"), "HARBOR_HA_STATE_DIR": str(node / "etc")}
    return subprocess.Popen(["bash", str(script_path("shared-secrets.sh"))], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return err


def _tree(node: Path) -> dict[str, bytes]:
    return {str(p.relative_to(node)): p.read_bytes() for p in sorted(node.rglob("*")) if p.is_file()}


EXPECTED_FILES = {"data/secret/keys/secretkey", "data/secret/core/private_key.pem", "data/secret/registry/root.crt",
                  "etc/shared-secrets.env", "etc/tls/server.crt", "etc/tls/server.key"}


def test_concurrent_bootstraps_end_identical_with_one_secret(aws, tmp_path):
    client, key_id = aws
    nodes = [tmp_path / "node-0", tmp_path / "node-1"]
    processes = [_start(node, key_id) for node in nodes]
    logs = [_finish(p) for p in processes]

    trees = [_tree(node) for node in nodes]
    assert set(trees[0]) == EXPECTED_FILES
    assert trees[0] == trees[1]
    secrets = client.list_secrets()["SecretList"]
    assert [s["Name"] for s in secrets] == [SECRET_NAME]
    assert secrets[0]["KmsKeyId"].endswith(key_id)
    # Both made material (neither found the secret) or one read the other's: either way one creation won.
    assert sum("secrets: created " in log for log in logs) == 1, logs

    stored = json.loads(client.get_secret_value(SecretId=SECRET_NAME)["SecretString"])
    files = trees[0]
    assert files["data/secret/keys/secretkey"].decode() == stored["secret_key"]
    assert files["data/secret/core/private_key.pem"].startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert files["etc/shared-secrets.env"].decode() == (
        f"CORE_SECRET={stored['core_secret']}\nJOBSERVICE_SECRET={stored['jobservice_secret']}\n"
        f"CSRF_KEY={stored['csrf_key']}\n")
    for key, length in (("core_secret", 16), ("jobservice_secret", 16), ("csrf_key", 32), ("secret_key", 16)):
        assert len(stored[key]) == length and stored[key].isalnum()
    assert (nodes[0] / "data/secret/core/private_key.pem").stat().st_mode & 0o077 == 0

    # A node that boots later reads the same material and creates nothing.
    later = tmp_path / "node-2"
    log = _finish(_start(later, key_id))
    assert "created" not in log and "making" not in log
    assert _tree(later) == trees[0]
    assert len(client.list_secrets()["SecretList"]) == 1
    _check_certificates(later)


def _check_certificates(node: Path) -> None:
    """The token certificate belongs to its key; the shared TLS certificate names the host."""
    def modulus(*args: str) -> str:
        return subprocess.run(["openssl", *args, "-noout", "-modulus"], capture_output=True, text=True,
                              check=True).stdout

    assert modulus("rsa", "-in", str(node / "data/secret/core/private_key.pem")) == modulus(
        "x509", "-in", str(node / "data/secret/registry/root.crt"))
    text = subprocess.run(["openssl", "x509", "-in", str(node / "etc/tls/server.crt"), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "DNS:registry.example.com" in text


def test_other_errors_stop_the_bootstrap(aws, tmp_path, monkeypatch):
    """A failure other than 'not found' (here: no credentials) must not lead to new material."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("HARBOR_HA_RETRIES", "2")
    process = _start(tmp_path / "node", aws[1])
    process.communicate(timeout=120)
    assert process.returncode != 0
    assert not (tmp_path / "node" / "etc" / "shared-secrets.env").exists()
