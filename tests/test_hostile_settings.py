"""Mistaken and hostile settings, through the environment, a config file and cdktf.json's context: each is
answered with one line naming the setting, the value and what is allowed; none is a traceback, none is
accepted only for AWS, Terraform or a construct to refuse it later, and none reaches Terraform (a sample runs
``harbor-ha plan`` itself)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from harbor_ha import rules
from harbor_ha.settings import STACK_NAMES, HarborHaSettings, SettingsError, load_settings

from conftest import PROJECT

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:harbor-tls-AbCdEf"
VPC = {"vpc_id": "vpc-0123456789abcdef0", "public_subnet_ids": ["subnet-0000000000000000a", "subnet-0000000000000000b"],
       "private_subnet_ids": ["subnet-0000000000000000c", "subnet-0000000000000000d"]}
MANY = [f"10.{i}.0.0/16" for i in range(21)]

# (class, source, setting, value, words the one line must hold, other settings, stack whose check_for answers)
CASES = [
    # a rule written twice that disagreed: what settings accepted, a construct refused with a traceback
    ("twice", "context", "name", "abcdefghijklmnopqrstu", "2-20 characters", {}, None),
    ("twice", "env", "name", "abcdefghijklmnopqrstu", "2-20 characters", {"stacks": ["master-master"]}, None),
    ("twice", "config", "name", "abcdefghijklmnopqrstuvwxyz", "2-22 characters", {"stacks": ["active-active"]}, None),
    ("twice", "context", "availability_zones", ["us-east-1a", "us-east-1a"], "distinct", {}, None),
    ("twice", "env", "availability_zones", "us-east-1a,us-east-1b,us-east-1a", "distinct", {}, None),
    ("twice", "context", "availability_zones", [f"us-east-1{z}" for z in "abcdef"] + ["us-east-1a"], "2 to 6", {},
     None),
    ("twice", "context", "db_engine_version", "9.6", "PostgreSQL version from 10", {}, None),
    ("twice", "config", "db_engine_version", "16.4.1.2", "PostgreSQL version", {}, None),
    ("twice", "env", "db_engine_version", "latest", "PostgreSQL version", {}, None),
    ("twice", "context", "db_engine_version", "1", "PostgreSQL version", {}, None),
    ("twice", "context", "harbor_instance_type", "m6i", "EC2 instance type", {}, None),
    ("twice", "context", "harbor_instance_type", "m6i.large.extra", "EC2 instance type", {}, None),
    ("twice", "env", "harbor_instance_type", "db.m6g.large", "EC2 instance type", {}, None),
    ("twice", "config", "lb_instance_type", "cache.t3.micro", "Nitro EC2 instance type", {}, None),
    ("twice", "context", "harbor_instance_type", "M6I.LARGE", "EC2 instance type", {}, None),
    ("twice", "context", "public_subnet_ids", ["subnet-0000000000000000a"] * 2, "each once",
     {k: v for k, v in VPC.items() if k != "public_subnet_ids"}, None),
    ("twice", "config", "private_subnet_ids", ["subnet-0000000000000000c"] * 2, "each once",
     {k: v for k, v in VPC.items() if k != "private_subnet_ids"}, None),
    ("twice", "context", "public_subnet_ids", VPC["private_subnet_ids"], "none of them both",
     {k: v for k, v in VPC.items() if k != "public_subnet_ids"}, None),
    ("twice", "context", "tls_certificate", ARN.replace("harbor-tls", "my cert"), "ARN of a Secrets Manager", {}, None),
    ("twice", "config", "tls_certificate", ARN[:-7], "ARN of a Secrets Manager", {}, None),
    ("twice", "context", "tls_certificate", ARN.replace("harbor-tls", "harbor'tls"), "ARN of a Secrets Manager", {},
     None),
    ("twice", "env", "tls_certificate", "arn:aws:s3:::harbor-tls", "ARN of a Secrets Manager", {}, None),
    ("twice", "context", "db_instance_class", "db.m6g", "RDS instance class", {}, None),
    ("twice", "context", "cache_node_type", "cache.t4g", "ElastiCache node type", {}, None),
    ("twice", "context", "redis_engine_version", "7", "Redis version", {}, None),
    ("twice", "context", "redis_engine_version", "7.1.2", "Redis version", {}, None),
    # patterns that ended in $ and let a trailing newline through
    ("newline", "config", "name", "harbor\n", "lower-case letters", {}, None),
    ("newline", "context", "region", "us-east-1\n", "AWS region", {}, None),
    ("newline", "config", "target", "local\n", "'local', 'aws'", {}, None),
    ("newline", "config", "harbor_instance_type", "m6i.large\n", "EC2 instance type", {}, None),
    ("newline", "config", "vpc_id", "vpc-0123456789abcdef0\n", "vpc-0123456789abcdef0",
     {k: v for k, v in VPC.items() if k != "vpc_id"}, None),
    ("newline", "config", "db_instance_class", "db.m6g.large\n", "RDS instance class", {}, None),
    ("newline", "context", "cache_node_type", "cache.t4g.medium\n", "ElastiCache node type", {}, None),
    ("newline", "config", "redis_engine_version", "7.1\n", "Redis version", {}, None),
    ("newline", "config", "node_storage", "s3\n", "'s3', 'ebs'", {}, None),
    ("newline", "config", "stacks", ["active-active\n"], "'active-active'", {}, None),
    ("newline", "config", "ssh_cidrs", ["10.0.0.0/8\n"], "IPv4 networks", {}, None),
    ("newline", "context", "admin_cidrs", ["0.0.0.0/0\n"], "IPv4 networks", {}, None),
    ("newline", "config", "vpc_cidr", "10.40.0.0/16\n", "private IPv4 network", {}, None),
    ("newline", "config", "availability_zones", ["us-east-1a\n", "us-east-1b"], "zones of region", {}, None),
    ("newline", "config", "db_engine_version", "16\n", "PostgreSQL version", {}, None),
    ("newline", "context", "secondary_region", "us-west-2\n", "AWS region", {}, None),
    ("newline", "config", "tls_certificate", ARN + "\n", "ARN of a Secrets Manager", {}, None),
    ("newline", "context", "public_subnet_ids", ["subnet-0000000000000000a\n", "subnet-0000000000000000b"],
     "subnet ids", {k: v for k, v in VPC.items() if k != "public_subnet_ids"}, None),
    # values AWS refuses at apply, or that break a node
    ("aws", "context", "tags", {f"k{i}": "v" for i in range(46)}, "at most 45", {}, None),
    ("aws", "config", "tags", {"aws:createdBy": "me"}, "not starting with 'aws:'", {}, None),
    ("aws", "context", "tags", {"AWS:team": "me"}, "not starting with 'aws:'", {}, None),
    ("aws", "context", "tags", {"k" * 129: "v"}, "keys of 1-128", {}, None),
    ("aws", "config", "tags", {"team": "v" * 257}, "values of 0-256", {}, None),
    ("aws", "context", "tags", {"team": "a;b"}, "letters, digits, spaces", {}, None),
    ("aws", "context", "tags", {"": "empty key"}, "keys of 1-128", {}, None),
    ("aws", "env", "tags", "team", "key=value pairs", {}, None),
    ("aws", "env", "tags", '{"team": 1}', "string keys", {}, None),
    ("aws", "context", "ssh_cidrs", ["10.0.0.0/8", "10.0.0.0/8"], "each network once", {}, None),
    ("aws", "env", "admin_cidrs", "0.0.0.0/0,0.0.0.0/0", "each network once", {}, None),
    ("aws", "context", "admin_cidrs", MANY, "at most 20", {}, None),
    ("aws", "context", "region", "us-east-9", "AWS region harbor-ha knows", {}, None),
    ("aws", "env", "region", "mars-north-1", "AWS region", {}, None),
    ("aws", "config", "region", "US-EAST-1", "AWS region", {}, None),
    ("aws", "context", "availability_zones", ["us-east-1a", "us-east-1z"], "zones of region us-east-1", {}, None),
    ("aws", "context", "availability_zones", ["us-east-1a", "us-west-2a"], "zones of region us-east-1", {}, None),
    ("aws", "context", "availability_zones", ["ap-northeast-1a", "ap-northeast-1b"], "ap-northeast-1c",
     {"region": "ap-northeast-1"}, None),
    ("aws", "env", "secondary_region", "eu-north-9", "AWS region", {}, None),
    ("aws", "context", "harbor_instance_type", "m6g.large", "x86_64", {}, None),
    ("aws", "config", "lb_instance_type", "t4g.small", "x86_64", {}, None),
    ("aws", "context", "lb_instance_type", "t2.small", "ens5", {}, None),
    ("aws", "context", "harbor_instance_type", "t2.large", "ens5", {"stacks": ["active-standby"]}, "active-standby"),
    ("aws", "env", "harbor_instance_type", "x9z.large", "EC2 instance type harbor-ha knows", {}, None),
    # a policy bypassed
    ("policy", "context", "ssh_cidrs", ["0.0.0.0/1", "128.0.0.0/1"], "nor to it in halves", {}, None),
    ("policy", "env", "ssh_cidrs", "0.0.0.0/0", "narrower than the whole internet", {}, None),
    ("policy", "context", "ssh_cidrs", ["10.0.0.0/7"], "from /8 to /32", {}, None),
    ("policy", "context", "ssh_cidrs", MANY[:11], "at most 10", {}, None),
    ("policy", "context", "ssh_cidrs", ["::/0"], "IPv4 networks", {}, None),
    ("policy", "context", "tags", {"harbor-ha:deployment": "someone-else"}, "'harbor-ha:'", {}, None),
    ("policy", "config", "tags", {"harbor-ha:vip": "harbor"}, "'harbor-ha:'", {}, None),
    ("policy", "context", "tags", {"Name": "mine"}, "not 'Name'", {}, None),
    # generated files broken by a value
    ("files", "context", "provider_mirror", '/opt/tf"plugins', "without quotes", {}, None),
    ("files", "config", "provider_mirror", "/opt/tf\\plugins", "backslashes", {}, None),
    ("files", "env", "provider_mirror", "/opt/${path.root}", "'${'", {}, None),
    ("files", "config", "provider_mirror", "/opt/tf\nplugins", "control characters", {}, None),
    # crashes in the toolchain
    ("toolchain", "context", "stacks", ["active-active", "active-active"], "each stack once", {}, None),
    ("toolchain", "env", "stacks", "master-slaves,master-slaves", "each stack once", {}, None),
    # types and ranges
    ("types", "config", "harbor_count", 2.5, "whole number", {}, None),
    ("types", "config", "harbor_count", True, "whole number", {}, None),
    ("types", "context", "harbor_count", "2", "whole number", {}, None),
    ("types", "env", "harbor_count", "1e3", "whole number", {}, None),
    ("types", "env", "harbor_count", "-3", "from 2 to 20", {}, None),
    ("types", "config", "harbor_count", 10 ** 12, "from 2 to 20", {}, None),
    ("types", "config", "name", None, "a string", {}, None),
    ("types", "config", "name", 42, "a string", {}, None),
    ("types", "config", "tags", ["team"], "object of string keys", {}, None),
    ("types", "config", "stacks", "active-active", "list of strings", {}, None),
    ("types", "context", "availability_zones", [1, 2], "list of strings", {}, None),
    ("types", "config", "deletion_protection", "yes", "true or false", {}, None),
    ("types", "env", "deletion_protection", "maybe", "true or false", {}, None),
    ("types", "config", "replica_count", 11, "from 1 to 10", {}, None),
    ("types", "config", "cache_node_count", 7, "from 2 to 6", {}, None),
    ("types", "context", "harbor_volume_gib", 19, "from 20 to 16384", {}, None),
    ("types", "context", "db_allocated_storage_gib", 70000, "from 20 to 65536", {}, None),
    ("types", "context", "vpc_cidr", "10.40.0.0/23", "from /16 to /22", {}, None),
    ("types", "context", "vpc_cidr", "8.8.0.0/16", "private IPv4 network", {}, None),
    ("types", "config", "vpc_cidr", "10.40.0.1/16", "private IPv4 network", {}, None),
    ("types", "config", "target", "AWS", "'local', 'aws'", {}, None),
    ("types", "config", "node_storage", "efs", "'s3', 'ebs'", {}, None),
    ("types", "context", "name", "-harbor", "starting with a letter", {}, None),
    ("types", "context", "name", "harbor-", "not ending with '-'", {}, None),
    ("types", "env", "name", "ha_rbor", "lower-case letters", {}, None),
    ("types", "context", "name", "h", "2-20 characters", {}, None),
    ("types", "context", "name", "harbör", "lower-case letters", {}, None),
    ("types", "context", "vpc_id", "vpc-XYZ", "vpc-0123456789abcdef0", {k: v for k, v in VPC.items() if k != "vpc_id"},
     None),
    ("types", "context", "admin_cidrs", [], "at least one network", {}, None),
]
assert len(CASES) >= 80 and {case[0] for case in CASES} >= {"twice", "newline", "aws", "policy", "files", "toolchain"}


def write_sources(root, source: str, key: str, value, others: dict) -> dict[str, str]:
    """The project files and environment that set ``key`` to ``value`` through ``source`` (``others``
    through cdktf.json); returns the environment."""
    context = dict(others)
    environ = {}
    if source == "context":
        context[key] = value
    elif source == "config":
        (root / "harbor-ha.json").write_text(json.dumps({key: value}))
    else:
        environ[f"HARBOR_HA_{key.upper()}"] = value
    (root / "cdktf.json").write_text(json.dumps({"language": "python", "app": "python3 main.py",
                                                 "context": {"harborHa": context}}))
    return environ


def one_problem(error: SettingsError) -> str:
    assert len(error.problems) == 1, error.problems
    (line,) = error.problems
    assert "\n" not in line
    return line


def _id(case) -> str:
    return f"{case[0]}-{case[1]}-{case[2]}-{json.dumps(case[3])[:30]}"


@pytest.mark.parametrize("kind,source,key,value,words,others,stack", CASES, ids=[_id(c) for c in CASES])
def test_each_mistake_is_one_clear_line(tmp_path, kind, source, key, value, words, others, stack):
    environ = write_sources(tmp_path, source, key, value, others)
    with pytest.raises(SettingsError) as caught:
        settings = load_settings(tmp_path, environ=environ)
        if stack:
            settings.check_for(stack)
    line = one_problem(caught.value) if not stack else caught.value.problems[0]
    assert line.startswith(f"{key} = ") and ": allowed is " in line, line
    assert words in line, line
    if isinstance(value, str) and len(value) < 60 and source != "env":
        assert repr(value) in line or json.dumps(value) in line, f"the value is named: {line}"
    if not stack:
        assert {"env": "environment", "config": "harbor-ha.json", "context": "cdktf.json"}[source] in line, line


def test_the_limits_the_readme_states_are_the_derived_ones():
    readme = (PROJECT / "README.md").read_text()
    line = next(row for row in readme.splitlines() if row.startswith("| `name` |"))
    stated = {stack: int(n) for n, stacks in re.findall(r"(\d+) for ([a-z-]+(?: and [a-z-]+)?)", line)
              for stack in stacks.split(" and ")}
    assert stated == {stack: rules.longest_name([stack]) for stack in STACK_NAMES}, line


def test_settings_accept_what_every_construct_accepts(app):
    """The longest name each stack allows builds that stack (the construct rules are the settings' own)."""
    from harbor_ha.stacks import stack_class

    for stack in STACK_NAMES:
        settings = HarborHaSettings(name="a" * rules.longest_name([stack]), replica_count=rules.MAX_REPLICAS,
                                    target="aws", stacks=(stack,))
        settings.check_for(stack)
        stack_class(stack)(app, f"longest-name-{stack}", settings=settings)


SAMPLE = [case for case in CASES if case[1] == "env" and not case[6]][:6] + [
    case for case in CASES if case[6]]


@pytest.mark.parametrize("kind,source,key,value,words,others,stack", SAMPLE, ids=[_id(c) for c in SAMPLE])
def test_the_cli_answers_with_the_line_and_runs_nothing(tmp_path, kind, source, key, value, words, others, stack):
    environ = write_sources(tmp_path, source, key, value, others)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(PROJECT),
           # an address nothing listens on: the line must come before any emulator or terraform
           "HARBOR_HA_LOCAL_ENDPOINT": "http://127.0.0.1:9", **environ}
    done = subprocess.run([sys.executable, "-c", "import sys; from harbor_ha.cli import main; sys.exit(main())", "plan",
                           stack or "active-active"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 2 and "Traceback" not in output, output
    problems = [line for line in done.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 1 and problems[0].startswith(f"  - {key} = ") and words in problems[0], output
    assert not (tmp_path / "cdktf.out").exists(), "nothing was synthesized"
    assert not (tmp_path / ".harbor-ha" / "state").exists(), "terraform never ran"
