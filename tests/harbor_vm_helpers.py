"""Checks shared by the Harbor fleet and standalone node tests: the user-data that cloud-init, shellcheck
and Harbor's template judge, and the instance hardening."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path


from harbor_ha.cloud_init import USER_DATA_LIMIT, written_files as files_of_user_data
from harbor_ha.constructs.harbor_host import AL2023_X86_64
from harbor_ha.harbor_boot import ENV_PATH

from conftest import require_tool, resources

_REFERENCE = re.compile(r"\$\{[^}]*\}")
PLAINTEXT_SECRETS = ("Harbor12345", "root123", "BEGIN RSA PRIVATE KEY", "BEGIN PRIVATE KEY")


def without_references(text: str) -> str:
    """User-data with every Terraform reference replaced by a plain placeholder, as the node would see it."""
    return _REFERENCE.sub("tf-reference", text)


def written_files(user_data: str) -> dict[str, str]:
    """The text of every file a cloud-config leaves on the node (those of its archive too), by path."""
    return {path: content.decode() for path, (content, _) in files_of_user_data(user_data).items()}


def environment(user_data: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in written_files(user_data)[ENV_PATH].splitlines())


def check_user_data(user_data: str, tmp_path: Path) -> dict[str, str]:
    """cloud-init's schema accepts it, shellcheck every script in it, it fits EC2, no secret in it."""
    assert len(user_data.encode()) <= USER_DATA_LIMIT
    for secret in PLAINTEXT_SECRETS:
        assert secret not in user_data
    cloud_init = require_tool("cloud-init")
    config = tmp_path / "user-data.yaml"
    config.write_text(without_references(user_data))
    result = subprocess.run([cloud_init, "schema", "--config-file", str(config)], capture_output=True, text=True)
    assert result.returncode == 0 and "Valid cloud-config" in result.stdout, result.stdout + result.stderr
    files = written_files(user_data)
    shellcheck = require_tool("shellcheck")
    scripts = [path for path, content in files.items() if content.startswith("#!/bin/bash")]
    assert scripts
    for path in scripts:
        script = tmp_path / Path(path).name
        script.write_text(files[path])
        result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{path}:\n{result.stdout}"
    # Every placeholder harbor.yml holds is one the configure script fills in, from a secret or the
    # environment; the template holds no Terraform reference (it travels compressed).
    configure = files["/usr/local/libexec/harbor-ha/configure-harbor.sh"]
    template = files["/etc/harbor-ha/harbor.yml.tmpl"]
    env = environment(user_data)
    assert "${" not in template
    for name in set(re.findall(r"@@([A-Z0-9_]+)@@", template)):
        assert f"[{name}]" in configure or f"HARBOR_YML_{name}" in env, name
    return files


def check_hardened(doc: dict, instance: dict, volume_gib: int) -> None:
    """IMDSv2 with hop limit 2, encrypted gp3 root volume, monitoring, EBS-optimized, AMI from SSM, update
    policy."""
    assert instance["metadata_options"] == {"http_endpoint": "enabled", "http_tokens": "required",
                                            "http_put_response_hop_limit": 2}
    root = instance["root_block_device"]
    assert (root["encrypted"], root["volume_type"], root["volume_size"]) == (True, "gp3", volume_gib)
    assert root["kms_key_id"].startswith("${aws_kms_key.")
    assert instance["monitoring"] is True and instance["ebs_optimized"] is True
    health = ['tags["harbor-ha:health"]', 'tags_all["harbor-ha:health"]']
    if instance.get("user_data_replace_on_change"):
        assert instance["lifecycle"]["ignore_changes"] == ["ami", *health, "ebs_optimized"], \
            "a fleet node rolls on new user-data"
    else:
        assert instance["lifecycle"]["ignore_changes"] == ["ami", *health, "user_data", "ebs_optimized"], \
            "standalone: data on it"
    (name, parameter), = doc["data"]["aws_ssm_parameter"].items()
    assert parameter["name"] == AL2023_X86_64
    assert instance["ami"] == f"${{data.aws_ssm_parameter.{name}.value}}"
    assert instance["depends_on"], "instances must wait for their role's policies"


def policy_statements(doc: dict, role_policy: dict) -> list[dict]:
    """The statements of one inline role policy (an ``aws_iam_role_policy`` body) of ``doc``."""
    document = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(.+)\.json\}", role_policy["policy"]).group(1)
    return doc["data"]["aws_iam_policy_document"][document]["statement"]


def role_policies(doc: dict) -> dict[str, list[dict]]:
    """Statements of every inline role policy, by policy name."""
    return {body["name"]: policy_statements(doc, body) for body in resources(doc, "aws_iam_role_policy").values()}
