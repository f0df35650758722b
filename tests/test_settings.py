"""Settings: every bad value is named with its setting, value and what is allowed, before anything is built."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harbor_ha.settings import STACK_NAMES, HarborHaSettings, SettingsError, load_settings

from conftest import PROJECT


def load(tmp_path, context=None, env=None, config=None):
    (tmp_path / "cdktf.json").write_text(json.dumps({"language": "python", "context": {"harborHa": context or {}}}))
    if config is not None:
        (tmp_path / "harbor-ha.json").write_text(config if isinstance(config, str) else json.dumps(config))
    return load_settings(tmp_path, environ=env or {})


def test_defaults_are_valid(tmp_path):
    settings = load(tmp_path)
    assert settings == HarborHaSettings()
    assert settings.zones == ("us-east-1a", "us-east-1b")
    assert settings.effective_db_engine_version == "16"
    assert settings.effective_deletion_protection is False  # local target
    assert settings.replace(target="aws").effective_deletion_protection is True


def test_sources_override_in_order(tmp_path):
    settings = load(tmp_path, context={"harbor_count": 3, "region": "eu-west-1"},
                    config={"harbor_count": 4}, env={"HARBOR_HA_HARBOR_COUNT": "5", "HARBOR_HA_SSH_CIDRS": "10.0.0.0/8, 192.0.2.0/24",
                                                     "HARBOR_HA_TAGS": "team=registry,env=prod", "HARBOR_HA_DELETION_PROTECTION": "yes"})
    assert settings.harbor_count == 5
    assert settings.region == "eu-west-1"
    assert settings.ssh_cidrs == ("10.0.0.0/8", "192.0.2.0/24")
    assert settings.tags == {"team": "registry", "env": "prod"}
    assert settings.deletion_protection is True
    assert {"harbor_count", "region", "ssh_cidrs", "tags", "deletion_protection"} <= settings.explicit


BAD = [
    # (source, key, value, words the message must contain)
    ("context", "name", "Harbor_Prod", "lower-case"),
    ("context", "target", "azure", "'local', 'aws'"),
    ("context", "region", "useast1", "AWS region"),
    ("context", "availability_zones", ["us-east-1a"], "at least 2"),
    ("context", "availability_zones", ["us-east-1a", "eu-west-1b"], "zones of region us-east-1"),
    ("context", "harbor_version", "latest", "X.Y.Z"),
    ("context", "harbor_count", 1, "from 2 to 20"),
    ("env", "harbor_count", "three", "whole number"),
    ("context", "harbor_instance_type", "large", "EC2 instance type"),
    ("context", "db_instance_class", "m6g.large", "RDS instance class"),
    ("context", "cache_node_type", "db.t4g.small", "ElastiCache node type"),
    ("context", "db_engine", "mysql", "one of 'postgres'"),
    ("context", "db_engine", "mariadb", "supports only PostgreSQL"),
    ("context", "db_engine", "mariadb", "HarborDatabase construct with engine='mariadb'"),
    ("context", "harbor_version", "v2.15.2", "without the 'v' of Harbor's tags: 2.15.2"),
    ("context", "harbor_version", "2.15.2\n", "X.Y.Z"),
    ("env", "harbor_version", "2.12.0", "from 2.13.0 on"),
    ("context", "harbor_version", "1.5.4", "you install yourself"),
    ("context", "hostname", "127.0.0.1", "Harbor's installer refuses '127.0.0.1'"),
    ("context", "hostname", "reg.mydomain.com", "Harbor's installer refuses 'reg.mydomain.com'"),
    ("context", "hostname", "registry", "two or more labels"),
    ("context", "hostname", "registry.example.com\n", "DNS name"),
    ("context", "cache_node_count", 1, "from 2 to 6"),
    ("context", "db_backup_retention_days", 0, "from 1 to 35"),
    ("context", "hostname", "https://registry.example.com", "DNS name"),
    ("context", "tls_certificate", "my-cert.pem", "self-signed"),
    ("context", "ssh_cidrs", ["0.0.0.0/0"], "narrower than the whole internet"),
    ("context", "ssh_cidrs", ["10.0.0.1/8"], "IPv4 networks"),
    ("context", "vpc_cidr", "8.8.0.0/16", "private IPv4 network"),
    ("context", "vpc_id", "vpc-0123456789abcdef0", "at least 2 subnet ids"),
    ("context", "node_storage", "nfs", "'s3', 'ebs'"),
    ("context", "replica_count", 0, "from 1 to 10"),
    ("context", "tags", {"aws:owner": "me"}, "not starting with 'aws:'"),
    ("context", "stacks", ["active-passive"], "'active-active'"),
    ("env", "deletion_protection", "maybe", "true or false"),
    ("context", "harbor_count", "2", "whole number"),
    ("context", "provider_mirror", "/nonexistent/mirror", "registry.terraform.io"),
    ("env", "ami_id", "ami-123", "ami- and 8 or 17 hex digits"),
    ("context", "ami_id", "al2023-latest", "Amazon Linux 2023 x86_64"),
]


@pytest.mark.parametrize("source,key,value,expected", BAD, ids=[f"{b[1]}={b[2]}" for b in BAD])
def test_bad_value_names_setting_value_and_allowed(tmp_path, source, key, value, expected):
    with pytest.raises(SettingsError) as caught:
        if source == "env":
            load(tmp_path, env={f"HARBOR_HA_{key.upper()}": value})
        else:
            load(tmp_path, context={key: value})
    message = str(caught.value)
    assert key in message, message
    assert expected in message, message
    assert "allowed is" in message, message


def test_unknown_setting_suggests_the_close_one(tmp_path):
    with pytest.raises(SettingsError, match="harbor_cout .*did you mean harbor_count"):
        load(tmp_path, context={"harbor_cout": 3})
    with pytest.raises(SettingsError, match="HARBOR_HA_REGOIN .*did you mean region"):
        load(tmp_path, env={"HARBOR_HA_REGOIN": "us-east-2"})


def test_every_problem_is_reported_at_once_with_its_source(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, context={"harbor_count": 0}, env={"HARBOR_HA_TARGET": "gcp"})
    problems = caught.value.problems
    assert len(problems) == 2
    assert any("harbor_count" in p and "cdktf.json" in p for p in problems)
    assert any("target" in p and "environment" in p for p in problems)


def test_broken_config_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match="harbor-ha.json: allowed is a readable JSON file"):
        load(tmp_path, config="{not json")
    with pytest.raises(SettingsError, match="HARBOR_HA_CONFIG"):
        load(tmp_path, env={"HARBOR_HA_CONFIG": str(tmp_path / "missing.json")})


def test_a_legacy_harbor_on_mariadb_is_one_line_pointing_at_the_construct(tmp_path):
    """The nodes install Harbor 2.13 or later (PostgreSQL only); MariaDB stays in HarborDatabase alone."""
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, context={"harbor_version": "1.5.4", "db_engine": "mariadb"})
    assert [p.split(" = ")[0] for p in caught.value.problems] == ["harbor_version", "db_engine"]
    assert all("\n" not in p for p in caught.value.problems)


def test_a_hostname_too_long_for_the_replica_names_is_refused(tmp_path):
    hostname = ".".join(["a" * 61] * 4)  # 247 characters: replica-0.<hostname> would exceed 253
    settings = load(tmp_path, context={"hostname": hostname})
    settings.check_for("active-active")
    with pytest.raises(SettingsError, match="at most 243 characters for master-slaves"):
        settings.check_for("master-slaves")


@pytest.mark.parametrize("stack,context,expected", [
    ("active-standby", {"harbor_count": 3}, "always two nodes"),
    ("active-standby", {"lb_instance_type": "t3.micro"}, "no load-balancer VMs"),
    ("master-master", {"secondary_region": "us-east-1"}, "other than region"),
    ("master-slaves", {"cache_node_count": 3}, "Harbor's own database and Redis"),
])
def test_stack_specific_settings_are_rejected(tmp_path, stack, context, expected):
    settings = load(tmp_path, context=context)
    with pytest.raises(SettingsError, match=expected) as caught:
        settings.check_for(stack)
    assert f"HARBOR_HA_STACKS={stack}" in str(caught.value), "the message says how to build that stack alone"


def test_other_stacks_accept_what_one_stack_rejects(tmp_path):
    settings = load(tmp_path, context={"harbor_count": 3, "stacks": ["active-active"]})
    settings.check_for("active-active")
    assert settings.stacks == ("active-active",)
    assert set(STACK_NAMES) == {"active-active", "active-standby", "master-slaves", "master-master"}


def test_main_prints_a_message_not_a_traceback(tmp_path):
    (tmp_path / "cdktf.json").write_text(json.dumps({"context": {"harborHa": {"harbor_count": 1}}}))
    result = subprocess.run([sys.executable, str(PROJECT / "main.py")], cwd=tmp_path, capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=120)
    assert result.returncode == 2
    assert "harbor_count = 1: allowed is a whole number from 2 to 20" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_readme_lists_every_setting_as_documented_in_code():
    readme = (PROJECT / "README.md").read_text()
    from harbor_ha.settings import SETTING_NAMES, reference_table
    table = reference_table()
    assert table in readme, "README's settings table is stale: paste harbor_ha.settings.reference_table()"
    for name in SETTING_NAMES:
        assert f"| `{name}` |" in table
