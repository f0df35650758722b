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

EXAMPLES = {"custom_stack": "corp-registry", "existing_data": "existing-data", "own_vpc": "own-vpc",
            "replication_pair": "replication-pair"}  # example directory: its stack


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


def test_existing_data_creates_no_store_and_opens_each_given_group_to_the_fleet(synthesized):
    """The database, cache and bucket are the project's, given by references: harbor-ha creates none of them
    (the one bucket is the network's log bucket), admits the Harbor servers on each given security group and
    lets them read the given secrets and use the given bucket."""
    doc = _doc(synthesized("existing_data"))
    resources = doc["resource"]
    assert not {"aws_db_instance", "aws_elasticache_replication_group", "aws_db_subnet_group"} & set(resources)
    assert [path(b) for b in resources["aws_s3_bucket"].values()] == ["existing-data/network/logs/bucket"]
    fleet_group = "${aws_security_group.harbor_hosts_security-group_0309E2C0.id}"
    admitted = {(r["security_group_id"], r["from_port"]) for r in resources["aws_vpc_security_group_ingress_rule"].values()
                if r.get("referenced_security_group_id") == fleet_group}
    assert admitted >= {("${var.db_security_group_id}", 5432), ("${var.redis_security_group_id}", 6379)}
    documents = {path(d): d for d in doc["data"]["aws_iam_policy_document"].values()}
    (db_read,) = [d for p, d in documents.items() if p.startswith("existing-data/database/")]
    assert db_read["statement"][0]["resources"] == ["${data.aws_db_instance.db.master_user_secret[0].secret_arn}"]
    assert db_read["statement"][1]["resources"] == ["${data.aws_db_instance.db.master_user_secret[0].kms_key_id}"]
    (redis_read,) = [d for p, d in documents.items() if p.startswith("existing-data/cache/")]
    assert [s["resources"] for s in redis_read["statement"]] == [["${var.redis_auth_token_secret_arn}"]]
    (bucket_use,) = [d for p, d in documents.items() if p.startswith("existing-data/storage/")]
    assert bucket_use["statement"][2]["resources"] == ["${var.bucket_kms_key_arn}"]
    user_data = " ".join(i["user_data"] for i in resources["aws_instance"].values() if "/harbor/hosts/" in path(i))
    assert "${data.aws_db_instance.db.address}" in user_data and "${var.bucket_name}" in user_data


def test_replication_pair_replicates_each_way(synthesized):
    doc = _doc(synthesized("replication_pair"))
    instances = {path(i): i for i in doc["resource"]["aws_instance"].values()}
    assert sorted(instances) == ["replication-pair/harbor-a/hosts/harbor", "replication-pair/harbor-b/hosts/harbor"]
    a, b = (instances[f"replication-pair/harbor-{label}/hosts/harbor"]["user_data"] for label in "ab")
    # Each node's boot runs the configurator with the other as its peer.
    assert "harbor-b=" in a and "harbor-a=" not in a
    assert "harbor-a=" in b and "harbor-b=" not in b


def path(body: dict) -> str:
    return body["//"]["metadata"]["path"]
