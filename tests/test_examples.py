"""The examples import harbor-ha's constructs as an outside project would: each runs as its own program from its
own directory, and terraform validate judges its output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import PROJECT, require_tool
from harbor_ha.terraform_config import terraform_env

EXAMPLES = {"custom_stack": "corp-registry", "own_vpc": "own-vpc"}  # example directory: its stack


def _synthesize(example: str, outdir) -> dict:
    # Its own process, its own working directory: nothing of the project's but the installed package.
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir)}
    result = subprocess.run([sys.executable, "main.py"], cwd=PROJECT / "examples" / example, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return outdir / "stacks" / EXAMPLES[example]


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    """``synthesized(example)``: the example's stack directory, synthesized once per module."""
    done: dict = {}

    def of(example: str):
        if example not in done:
            done[example] = _synthesize(example, tmp_path_factory.mktemp(example))
        return done[example]
    return of


def _doc(directory) -> dict:
    return json.loads((directory / "cdk.tf.json").read_text())


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_each_example_passes_terraform_validate(synthesized, example):
    directory = synthesized(example)
    terraform = require_tool("terraform")
    env = terraform_env()
    init = subprocess.run([terraform, "init", "-backend=false", "-input=false", "-no-color"], cwd=directory,
                          env=env, capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stderr
    validate = subprocess.run([terraform, "validate", "-json"], cwd=directory, env=env, capture_output=True,
                              text=True, timeout=300)
    report = json.loads(validate.stdout)
    assert report["valid"], report["diagnostics"]


def test_custom_stack_uses_its_custom_props(synthesized):
    doc = _doc(synthesized("custom_stack"))
    types = sorted(i["instance_type"] for i in doc["resource"]["aws_instance"].values())
    assert types == ["c6i.large", "c6i.large", "m6i.xlarge", "m6i.xlarge", "m6i.xlarge"], types
    assert len(doc["resource"]["aws_nat_gateway"]) == 1
    ingress = doc["resource"]["aws_vpc_security_group_ingress_rule"].values()
    assert {r.get("cidr_ipv4") for r in ingress} >= {"198.51.100.0/24", "192.0.2.0/28"}
    assert "0.0.0.0/0" not in {r.get("cidr_ipv4") for r in ingress}


def test_own_vpc_builds_in_the_projects_vpc_by_reference(synthesized):
    """The project's VPC and subnets, given as references made in the same stack: harbor-ha creates no network
    of its own and places every server, director and data store in the project's subnets."""
    directory = synthesized("own_vpc")
    resources = _doc(directory)["resource"]
    assert list(resources["aws_vpc"]) == ["vpc"] and len(resources["aws_subnet"]) == 4, "only the project's network"
    project_subnets = {f"${{aws_subnet.{name}.id}}" for name in resources["aws_subnet"]}
    assert {i["subnet_id"] for i in resources["aws_instance"].values()} <= project_subnets
    data_sources = _doc(directory)["data"]["aws_subnet"].values()
    assert {d["id"] for d in data_sources} == project_subnets and all(d["vpc_id"] == "${aws_vpc.vpc.id}"
                                                                     for d in data_sources)
    (db_subnets,) = resources["aws_db_subnet_group"].values()
    assert set(db_subnets["subnet_ids"]) == {f"${{aws_subnet.private-{i}.id}}" for i in (0, 1)}
