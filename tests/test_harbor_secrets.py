"""Secrets on a Harbor node, against a moto server: the shared-secrets bootstrap (nodes booting at the same
time end with byte-identical Harbor secrets, and exactly one secret holds them; a stored value the boot steps
cannot carry is refused), and the configure step's own rules (a placeholder left unfilled, Harbor's own
database password kept). Harbor's real installer judges the whole boot in test_harbor_installer.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from harbor_ha.harbor_boot import boot_script
from harbor_ha.harbor_config import (
    ExternalDatabase, ExternalRedis, HarborConfig, placeholder, render_harbor_yml,
)
from conftest import FakeImds, require_tool

REGION = "us-east-1"
SECRET_NAME = "harbor-ha/test/harbor-shared-secrets"


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


def _as_on_the_node(directory: Path, name: str) -> str:
    """The boot script as user-data carries it (comment lines dropped), written to ``directory``."""
    path = directory / name
    path.write_text(boot_script(name).content)
    return str(path)


def _start(node: Path, key_id: str) -> subprocess.Popen:
    require_tool("openssl")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # venv's aws
           "SHARED_SECRET_NAME": SECRET_NAME,
           "SHARED_SECRET_KMS_KEY": key_id, "HARBOR_HOSTNAME": "registry.example.com",
           "HARBOR_SECRET_DIR": str(node / "data" / "secret"), "HARBOR_HA_STATE_DIR": str(node / "etc")}
    return subprocess.Popen(["bash", _as_on_the_node(node.parent, "shared-secrets.sh")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


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


def test_stored_secrets_the_rewrite_cannot_carry_are_refused_not_written(aws, tmp_path):
    """configure-harbor.sh rewrites prepare's env files with sed: a stored value other than letters and digits
    (here one with '/', '&' and a newline) stops the node before any file is written."""
    client, key_id = aws
    planted = {"core_secret": "abc/def&ghi\nXYZ1", "jobservice_secret": "J" * 16, "csrf_key": "K" * 32,
               "secret_key": "S" * 16, "token_private_key": "k", "token_certificate": "c", "tls_private_key": "k",
               "tls_certificate": "c"}
    client.create_secret(Name=SECRET_NAME, SecretString=json.dumps(planted))
    process = _start(tmp_path / "node", key_id)
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0 and "core_secret is not 16 letters and digits" in err
    assert not (tmp_path / "node" / "etc" / "shared-secrets.env").exists()
    assert not (tmp_path / "node" / "data" / "secret" / "keys" / "secretkey").exists()


FAKE_PREPARE = """#!/bin/bash
# Stands in for Harbor's prepare: fresh random secrets in the env files, as the real one makes them.
set -euo pipefail
[ "$1" = --with-trivy ]
for component in core jobservice registryctl; do
  mkdir -p "common/config/$component"
  printf 'CORE_SECRET=%s\\nJOBSERVICE_SECRET=%s\\nOTHER=kept\\n' "$RANDOM$RANDOM" "$RANDOM" \\
    >"common/config/$component/env"
done
echo "CSRF_KEY=$RANDOM" >>common/config/core/env
"""


EXTERNAL_SERVICES = HarborConfig(
    harbor_version="2.15.2", external_redis=ExternalRedis(host="redis.internal", port=6379),
    external_database=ExternalDatabase(host="db.internal", port=5432, db_name="registry", username="harbor"))


PRIVATE_IP = "10.40.1.25"


@pytest.fixture
def node_metadata(imds_url, monkeypatch):
    """The instance metadata configure-harbor.sh reads (its private address), from a loopback IMDSv2."""
    FakeImds.metadata = {"local-ipv4": PRIVATE_IP}
    monkeypatch.setenv("HARBOR_HA_IMDS_ENDPOINT", imds_url)


def _configure(tmp_path: Path, environment: dict[str, str],
               config: HarborConfig = EXTERNAL_SERVICES) -> subprocess.CompletedProcess:
    """Run configure-harbor.sh with a stand-in prepare and systemctl; the real aws CLI against moto (use the
    ``node_metadata`` fixture)."""
    bin_dir, install, state = tmp_path / "bin", tmp_path / "opt-harbor", tmp_path / "etc"
    for directory in (bin_dir, install, state):
        directory.mkdir(exist_ok=True)
    (bin_dir / "systemctl").write_text(f"#!/bin/bash\necho \"$*\" >>{tmp_path}/systemctl.log\n")
    (install / "prepare").write_text(FAKE_PREPARE)
    for program in (bin_dir / "systemctl", install / "prepare"):
        program.chmod(0o755)
    (state / "harbor.yml.tmpl").write_text(render_harbor_yml(config))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "HARBOR_HA_STATE_DIR": str(state), "HARBOR_INSTALL_DIR": str(install),
           "HARBOR_DATA_DIR": str(tmp_path / "data"), "HARBOR_HOSTNAME": "registry.example.com", **environment}
    return subprocess.run(["bash", _as_on_the_node(tmp_path, "configure-harbor.sh")], env=env, capture_output=True,
                          text=True, timeout=120)


def test_configure_with_harbors_own_database_keeps_its_password_across_runs(aws, node_metadata, tmp_path):
    client, _ = aws
    admin = client.create_secret(Name="admin-2", SecretString="Admin12345")["ARN"]
    state = tmp_path / "etc"

    def run() -> dict:
        result = _configure(tmp_path, {"ADMIN_SECRET_ARN": admin}, HarborConfig(harbor_version="2.15.2"))
        assert result.returncode == 0, result.stderr
        return yaml.safe_load((tmp_path / "opt-harbor" / "harbor.yml").read_text())

    first, second = run(), run()
    password = first["database"]["password"]
    assert len(password) == 48 and password == second["database"]["password"]
    assert (tmp_path / "data" / "harbor-ha" / "database-password").read_text().strip() == password
    # No shared secrets (a standalone node): prepare's own values stay; a self-signed certificate is made,
    # valid for the hostname, the private address peers replicate to, and loopback (the node's own tools).
    assert "CORE_SECRET=CCCC" not in (tmp_path / "opt-harbor/common/config/core/env").read_text()
    names = subprocess.run(["openssl", "x509", "-in", str(state / "tls" / "server.crt"), "-noout", "-ext",
                            "subjectAltName"], capture_output=True, text=True, check=True).stdout
    assert f"DNS:registry.example.com, IP Address:{PRIVATE_IP}, IP Address:127.0.0.1" in names


def test_configure_refuses_a_template_with_an_unfilled_placeholder(aws, node_metadata, tmp_path):
    client, _ = aws
    admin = client.create_secret(Name="admin-3", SecretString="Admin12345")["ARN"]
    # External Redis but no REDIS_SECRET_ARN: its password placeholder stays.
    result = _configure(tmp_path, {"ADMIN_SECRET_ARN": admin, "DB_SECRET_ARN": ""})
    assert result.returncode != 0 and "@@REDIS_PASSWORD@@" in result.stderr
    assert not (tmp_path / "opt-harbor" / "harbor.yml").exists()
