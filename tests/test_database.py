"""HarborDatabase: PostgreSQL (MariaDB only for a legacy Harbor), Multi-AZ, encrypted, TLS-only, a managed
master password, and a security group closed until allow_from."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harbor_ha.aws import IamRole
from harbor_ha.constructs.database import HarborDatabase, HarborDatabaseProps
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks.base import HarborHaStack
from harbor_ha.stacks.props import database_props

from conftest import resources
from data_tier_helpers import ASSUME_EC2, PRIVATE_SUBNETS, VPC, assert_grants_secret_read, assert_rejected, one


def props(**changes) -> HarborDatabaseProps:
    return HarborDatabaseProps(**{"name": "harbor", "vpc_id": VPC, "subnet_ids": PRIVATE_SUBNETS, **changes})


def build(app, stack_id, settings, synth, **changes):
    stack = HarborHaStack(app, stack_id, settings=settings)
    database = HarborDatabase(stack, "database", props=props(**changes))
    return stack, database


def test_postgres_defaults_are_multi_az_encrypted_tls_only_with_a_managed_password(app, stack_id, settings, synth):
    stack, database = build(app, stack_id, settings, synth)
    doc = synth(stack)
    _, db = one(doc, "aws_db_instance")
    key_name, key = one(doc, "aws_kms_key")
    key_arn = f"${{aws_kms_key.{key_name}.arn}}"
    assert key["enable_key_rotation"] is True
    expected = {
        "identifier": "harbor-registry", "engine": "postgres", "engine_version": "16", "port": 5432,
        "db_name": "registry", "username": "harbor", "multi_az": True, "storage_encrypted": True,
        "kms_key_id": key_arn, "manage_master_user_password": True, "master_user_secret_kms_key_id": key_arn,
        "iam_database_authentication_enabled": True, "publicly_accessible": False, "backup_retention_period": 7,
        "copy_tags_to_snapshot": True, "deletion_protection": True, "skip_final_snapshot": False,
        "final_snapshot_identifier": "harbor-registry-final", "auto_minor_version_upgrade": True,
        "enabled_cloudwatch_logs_exports": ["postgresql", "upgrade"], "performance_insights_enabled": True,
        "performance_insights_kms_key_id": key_arn, "monitoring_interval": 60,
        "allocated_storage": 50, "instance_class": "db.m6g.large", "storage_type": "gp3",
    }
    assert {k: db.get(k) for k in expected} == expected
    assert "password" not in db, "the master password is managed by RDS, never set here"

    parameters_name, parameters = one(doc, "aws_db_parameter_group")
    assert parameters["family"] == "postgres16"
    assert parameters["parameter"] == [{"name": "rds.force_ssl", "value": "1"}]
    assert db["parameter_group_name"] == f"${{aws_db_parameter_group.{parameters_name}.name}}"
    subnets_name, subnets = one(doc, "aws_db_subnet_group")
    assert subnets["subnet_ids"] == list(PRIVATE_SUBNETS)
    assert db["db_subnet_group_name"] == f"${{aws_db_subnet_group.{subnets_name}.name}}"

    group_name, group = one(doc, "aws_security_group")
    assert db["vpc_security_group_ids"] == [f"${{aws_security_group.{group_name}.id}}"]
    assert group["vpc_id"] == VPC and group["egress"] == [] and "ingress" not in group
    assert resources(doc, "aws_vpc_security_group_ingress_rule") == {}, "nobody is admitted before allow_from"

    assert (database.engine, database.db_port, database.db_name, database.master_username) == (
        "postgres", 5432, "registry", "harbor")
    for attribute in ("db_endpoint", "db_address", "master_user_secret_arn", "security_group_id"):
        assert getattr(database, attribute).startswith("${TfToken["), attribute


def test_allow_from_opens_the_db_port_to_the_peer_group_only(app, stack_id, settings, synth):
    stack, database = build(app, stack_id, settings, synth)
    database.allow_from(SimpleNamespace(security_group_id="sg-0123456789abcdef0"))
    database.allow_from(SimpleNamespace(security_group_id="sg-0fedcba9876543210"))
    doc = synth(stack)
    group_name, _ = one(doc, "aws_security_group")
    rules = sorted(resources(doc, "aws_vpc_security_group_ingress_rule").values(),
                   key=lambda r: r["referenced_security_group_id"])
    assert [(r["security_group_id"], r["referenced_security_group_id"], r["ip_protocol"], r["from_port"], r["to_port"])
            for r in rules] == [(f"${{aws_security_group.{group_name}.id}}", peer, "tcp", 5432, 5432)
                                for peer in ("sg-0123456789abcdef0", "sg-0fedcba9876543210")]
    assert all("cidr_ipv4" not in r for r in rules)


def test_grant_read_master_secret(app, stack_id, settings, synth):
    stack, database = build(app, stack_id, settings, synth)
    database.grant_read_master_secret(IamRole(stack, "harbor-role", assume_role_policy=ASSUME_EC2))
    doc = synth(stack)
    db_name, _ = one(doc, "aws_db_instance")
    assert_grants_secret_read(doc, f"${{aws_db_instance.{db_name}.master_user_secret[0].secret_arn}}")


def test_mariadb_for_a_legacy_harbor(app, stack_id, settings, synth):
    stack, database = build(app, stack_id, settings, synth, engine="mariadb", harbor_version="1.5.4",
                            deletion_protection=False, final_snapshot=False, backup_retention_days=14)
    doc = synth(stack)
    _, db = one(doc, "aws_db_instance")
    assert (db["engine"], db["engine_version"], db["port"]) == ("mariadb", "10.11", 3306)
    assert db["enabled_cloudwatch_logs_exports"] == ["error", "slowquery"]
    assert (db["deletion_protection"], db["skip_final_snapshot"], db["backup_retention_period"]) == (False, True, 14)
    assert "final_snapshot_identifier" not in db
    parameters = one(doc, "aws_db_parameter_group")[1]
    assert parameters["family"] == "mariadb10.11"
    assert parameters["parameter"] == [{"name": "require_secure_transport", "value": "1"}]
    assert (database.engine, database.db_port) == ("mariadb", 3306)


def test_props_of_the_settings_maps_the_database_settings():
    network = SimpleNamespace(vpc_id=VPC, private_subnet_ids=list(PRIVATE_SUBNETS))
    settings = HarborHaSettings(name="reg", target="aws", db_instance_class="db.r6g.xlarge", db_engine_version="16.4",
                                db_allocated_storage_gib=200, db_backup_retention_days=30)
    assert database_props(settings, network) == HarborDatabaseProps(
        name="reg", vpc_id=VPC, subnet_ids=PRIVATE_SUBNETS, engine="postgres", harbor_version="2.15.2", engine_version="16.4",
        instance_class="db.r6g.xlarge", allocated_storage_gib=200, backup_retention_days=30,
        deletion_protection=True, final_snapshot=True)
    local = database_props(HarborHaSettings(), network)
    assert (local.deletion_protection, local.final_snapshot, local.effective_engine_version) == (False, False, "16")


@pytest.mark.parametrize(("changes", "prop", "allowed"), [
    (dict(engine="mysql"), "engine", "one of 'postgres', 'mariadb'"),
    (dict(engine="mariadb"), "engine", "'postgres': Harbor 2.15.2 supports only PostgreSQL"),
    (dict(engine="postgres", harbor_version="1.5.4"), "engine", "'mariadb': Harbor 1.5.4 predates PostgreSQL"),
    (dict(harbor_version="latest"), "harbor_version", "X.Y.Z"),
    (dict(engine_version="sixteen"), "engine_version", "a PostgreSQL version"),
    (dict(engine="mariadb", harbor_version="1.5.0", engine_version="10"), "engine_version", "a MariaDB version"),
    (dict(subnet_ids=PRIVATE_SUBNETS[:1]), "subnet_ids", "at least 2"),
    (dict(instance_class="m6g.large"), "instance_class", "db.m6g.large"),
    (dict(allocated_storage_gib=10), "allocated_storage_gib", "from 20 to 65536"),
    (dict(backup_retention_days=0), "backup_retention_days", "from 1 to 35"),
])
def test_bad_props_name_the_prop_and_what_is_allowed(changes, prop, allowed):
    assert_rejected(lambda: props(**changes), prop, allowed)


def test_database_construct_snapshot(app, stack_id, settings, synth, snapshot):
    stack, database = build(app, stack_id, settings, synth)
    database.allow_from(SimpleNamespace(security_group_id="sg-0123456789abcdef0"))
    assert synth(stack) == snapshot
