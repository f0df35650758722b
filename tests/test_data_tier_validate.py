"""The data tier wired together in one stack passes ``terraform validate`` against the real AWS provider
schema, and its synthesized JSON carries no secret material."""

from __future__ import annotations

import json

import pytest

from harbor_ha.aws import Construct, IamRole, SecurityGroup
from harbor_ha.constructs.cache import HarborCache
from harbor_ha.constructs.database import HarborDatabase
from harbor_ha.constructs.network import HarborNetwork
from harbor_ha.constructs.storage import RegistryStorage
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks.base import HarborHaStack
from harbor_ha.stacks.props import cache_props, database_props, network_props, storage_props

from conftest import TEST_LOCAL_ENDPOINT, CdktfTesting, resources, terraform_validate
from data_tier_helpers import ASSUME_EC2

SECRET_KEYS = ("password", "master_password", "auth_token", "secret_string", "random_password")


class HarborNodes(Construct):
    """Stands in for the Harbor fleet: something with a security group that the data tier admits."""

    def __init__(self, scope, id_, *, vpc_id: str) -> None:
        super().__init__(scope, id_)
        self.security_group_id = SecurityGroup(self, "group", vpc_id=vpc_id, description="Harbor nodes").id


class DataTierStack(HarborHaStack):
    """Network, image bucket, database and cache, with a stand-in for the Harbor nodes wired to them, and
    a second network given by id (the look-up path)."""

    def __init__(self, scope, id_, *, settings: HarborHaSettings) -> None:
        super().__init__(scope, id_, settings=settings, local_endpoint=TEST_LOCAL_ENDPOINT)
        network = HarborNetwork(self, "network", props=network_props(settings))
        HarborNetwork(self, "existing-network", props=network_props(settings.replace(
            vpc_id="vpc-0123456789abcdef0",
            public_subnet_ids=("subnet-0000000000000000a", "subnet-0000000000000000b"),
            private_subnet_ids=("subnet-0000000000000001a", "subnet-0000000000000001b"))))
        storage = RegistryStorage(self, "storage", props=storage_props(settings))
        database = HarborDatabase(self, "database", props=database_props(settings, network))
        cache = HarborCache(self, "cache", props=cache_props(settings, network))
        nodes = HarborNodes(self, "harbor-nodes", vpc_id=network.vpc_id)
        role = IamRole(self, "harbor-role", assume_role_policy=ASSUME_EC2)
        for data_store in (database, cache):
            data_store.allow_from(nodes)
        storage.grant_read_write(role)
        database.grant_read_master_secret(role)
        cache.grant_read_auth_token(role)


@pytest.fixture(scope="module")
def synthesized(app, tmp_path_factory):
    stack = DataTierStack(app, "data-tier-validate", settings=HarborHaSettings())
    text = CdktfTesting.synth(stack)
    workdir = tmp_path_factory.mktemp("data-tier")
    (workdir / "cdk.tf.json").write_text(text)
    return workdir, json.loads(text)


def test_terraform_validate_accepts_the_wired_data_tier(synthesized, monkeypatch):
    workdir, doc = synthesized
    terraform_validate(workdir, json.dumps(doc), monkeypatch)


def _walk(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")
    else:
        yield path, node


def test_no_secret_material_in_the_synthesized_json(synthesized):
    _, doc = synthesized
    secret_values = [(path, value) for path, value in _walk(doc.get("resource", {}))
                     if path.rsplit(".", 1)[-1] in SECRET_KEYS]
    assert secret_values, "expected the cache's token wiring to be present"
    for path, value in secret_values:
        assert isinstance(value, str) and value.startswith("${") and value.endswith("}"), (
            f"{path} holds a literal value; secrets must be references")
    (db,) = resources(doc, "aws_db_instance").values()
    assert "password" not in db and db["manage_master_user_password"] is True
    (group,) = resources(doc, "aws_elasticache_replication_group").values()
    assert group["auth_token"].startswith("${data.aws_secretsmanager_secret_version.")
    assert "output" not in doc, "the data tier exports no values, least of all secrets"


def test_the_harbor_nodes_reach_the_database_and_cache_ports_only(synthesized):
    _, doc = synthesized
    rules = resources(doc, "aws_vpc_security_group_ingress_rule").values()
    (nodes,) = (name for name in resources(doc, "aws_security_group") if name.startswith("harbor-nodes_group"))
    assert sorted((r["from_port"], r["referenced_security_group_id"]) for r in rules) == [
        (5432, f"${{aws_security_group.{nodes}.id}}"), (6379, f"${{aws_security_group.{nodes}.id}}")]
