"""HarborCache: a cluster-mode-disabled Redis replication group with failover, encryption and an AUTH token
generated once into Secrets Manager."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harbor_ha.aws import IamRole
from harbor_ha.constructs.cache import HarborCache, HarborCacheProps
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks.base import HarborHaStack
from harbor_ha.stacks.props import cache_props

from conftest import written_once_from_a_generator
from data_tier_helpers import ASSUME_EC2, PRIVATE_SUBNETS, VPC, assert_grants_secret_read, assert_rejected, one


def props(**changes) -> HarborCacheProps:
    return HarborCacheProps(**{"name": "harbor", "vpc_id": VPC, "subnet_ids": PRIVATE_SUBNETS, **changes})


def build(app, stack_id, settings, **changes):
    stack = HarborHaStack(app, stack_id, settings=settings)
    return stack, HarborCache(stack, "cache", props=props(**changes))


def test_replication_group_fails_over_and_is_encrypted(app, stack_id, settings, synth):
    stack, cache = build(app, stack_id, settings)
    doc = synth(stack)
    _, group = one(doc, "aws_elasticache_replication_group")
    key_name, key = one(doc, "aws_kms_key")
    assert key["enable_key_rotation"] is True
    subnets_name, subnets = one(doc, "aws_elasticache_subnet_group")
    assert subnets["subnet_ids"] == list(PRIVATE_SUBNETS)
    group_name, security_group = one(doc, "aws_security_group")
    assert security_group["egress"] == [] and "ingress" not in security_group
    expected = {
        "replication_group_id": "harbor-redis", "engine": "redis", "engine_version": "7.1", "port": 6379,
        "node_type": "cache.t4g.medium", "cluster_mode": "disabled", "num_node_groups": 1,
        "replicas_per_node_group": 1, "automatic_failover_enabled": True, "multi_az_enabled": True,
        "at_rest_encryption_enabled": "true", "kms_key_id": f"${{aws_kms_key.{key_name}.arn}}",
        "transit_encryption_enabled": True, "auto_minor_version_upgrade": "true", "snapshot_retention_limit": 1,
        "subnet_group_name": f"${{aws_elasticache_subnet_group.{subnets_name}.name}}",
        "security_group_ids": [f"${{aws_security_group.{group_name}.id}}"],
    }
    assert {k: group.get(k) for k in expected} == expected
    assert "num_cache_clusters" not in group
    assert (cache.redis_port, cache.redis_endpoint[:10], cache.security_group_id[:10]) == (6379, "${TfToken[", "${TfToken[")


def test_auth_token_is_generated_once_into_an_encrypted_secret(app, stack_id, settings, synth):
    stack, cache = build(app, stack_id, settings)
    doc = synth(stack)
    _, group = one(doc, "aws_elasticache_replication_group")
    key_name, _ = one(doc, "aws_kms_key")
    secret_name, secret = one(doc, "aws_secretsmanager_secret")
    assert secret["kms_key_id"] == f"${{aws_kms_key.{key_name}.arn}}"
    version_name, version = one(doc, "aws_secretsmanager_secret_version")
    assert version["secret_id"] == f"${{aws_secretsmanager_secret.{secret_name}.id}}"
    generator = written_once_from_a_generator(doc, version)
    assert (generator["password_length"], generator["exclude_punctuation"]) == (64, True)
    (read_name, read), = doc["data"]["aws_secretsmanager_secret_version"].items()
    assert read["depends_on"] == [f"aws_secretsmanager_secret_version.{version_name}"]
    assert group["auth_token"] == f"${{data.aws_secretsmanager_secret_version.{read_name}.secret_string}}"
    assert cache.auth_token_secret_arn.startswith("${TfToken[")


def test_allow_from_and_grant_read_auth_token(app, stack_id, settings, synth):
    stack, cache = build(app, stack_id, settings)
    cache.allow_from(SimpleNamespace(security_group_id="sg-0123456789abcdef0"))
    cache.grant_read_auth_token(IamRole(stack, "harbor-role", assume_role_policy=ASSUME_EC2))
    doc = synth(stack)
    group_name, _ = one(doc, "aws_security_group")
    _, rule = one(doc, "aws_vpc_security_group_ingress_rule")
    assert (rule["security_group_id"], rule["referenced_security_group_id"], rule["ip_protocol"], rule["from_port"],
            rule["to_port"]) == (f"${{aws_security_group.{group_name}.id}}", "sg-0123456789abcdef0", "tcp", 6379, 6379)
    secret_name, _ = one(doc, "aws_secretsmanager_secret")
    assert_grants_secret_read(doc, f"${{aws_secretsmanager_secret.{secret_name}.arn}}")


def test_more_nodes_become_replicas_of_the_one_shard(app, stack_id, settings, synth):
    stack, _ = build(app, stack_id, settings, node_count=4, snapshot_retention_days=0)
    _, group = one(synth(stack), "aws_elasticache_replication_group")
    assert (group["num_node_groups"], group["replicas_per_node_group"], group["snapshot_retention_limit"]) == (1, 3, 0)


def test_props_of_the_settings_maps_the_cache_settings():
    network = SimpleNamespace(vpc_id=VPC, private_subnet_ids=list(PRIVATE_SUBNETS))
    settings = HarborHaSettings(name="reg", cache_node_type="cache.r7g.large", cache_node_count=3,
                                redis_engine_version="7.0")
    assert cache_props(settings, network) == HarborCacheProps(
        name="reg", vpc_id=VPC, subnet_ids=PRIVATE_SUBNETS, node_type="cache.r7g.large", node_count=3, engine_version="7.0")


@pytest.mark.parametrize(("changes", "prop", "allowed"), [
    (dict(node_count=1), "node_count", "from 2 to 6"),
    (dict(node_count=7), "node_count", "from 2 to 6"),
    (dict(snapshot_retention_days=-1), "snapshot_retention_days", "from 0 to 35"),
    (dict(subnet_ids=PRIVATE_SUBNETS[:1]), "subnet_ids", "at least 2"),
    (dict(node_type="t4g.medium"), "node_type", "cache.t4g.medium"),
    (dict(engine_version="7"), "engine_version", "such as 7.1"),
    (dict(name="Harbor"), "name", "lower-case"),
])
def test_bad_props_name_the_prop_and_what_is_allowed(changes, prop, allowed):
    assert_rejected(lambda: props(**changes), prop, allowed)


def test_cache_construct_snapshot(app, stack_id, settings, synth, snapshot):
    stack, cache = build(app, stack_id, settings)
    cache.allow_from(SimpleNamespace(security_group_id="sg-0123456789abcdef0"))
    assert synth(stack) == snapshot
