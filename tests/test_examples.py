"""The example stack imports harbor-ha's constructs as an outside project would: run it as its own program
from its own directory, then judge its output with terraform validate."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import PROJECT, require_tool
from harbor_ha.terraform_config import terraform_env

EXAMPLE = PROJECT / "examples" / "custom_stack"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("example")
    # Its own process, its own working directory: nothing of the project's but the installed package.
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir)}
    result = subprocess.run([sys.executable, "main.py"], cwd=EXAMPLE, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return outdir / "stacks" / "corp-registry"


def test_example_uses_custom_props(synthesized):
    doc = json.loads((synthesized / "cdk.tf.json").read_text())
    instances = doc["resource"]["aws_instance"]
    types = sorted(i["instance_type"] for i in instances.values())
    assert types == ["c6i.large", "c6i.large", "m6i.xlarge", "m6i.xlarge", "m6i.xlarge"], types
    assert len(doc["resource"]["aws_nat_gateway"]) == 1
    ingress = doc["resource"]["aws_vpc_security_group_ingress_rule"].values()
    assert {r.get("cidr_ipv4") for r in ingress} >= {"198.51.100.0/24", "192.0.2.0/28"}
    assert "0.0.0.0/0" not in {r.get("cidr_ipv4") for r in ingress}


def test_example_passes_terraform_validate(synthesized):
    terraform = require_tool("terraform")
    env = terraform_env()
    init = subprocess.run([terraform, "init", "-backend=false", "-input=false", "-no-color"], cwd=synthesized,
                          env=env, capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stderr
    validate = subprocess.run([terraform, "validate", "-json"], cwd=synthesized, env=env, capture_output=True,
                              text=True, timeout=300)
    report = json.loads(validate.stdout)
    assert report["valid"], report["diagnostics"]
