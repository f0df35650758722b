"""The ``from_attributes`` importers (an existing database, cache and bucket) and the protocols the props name:
harbor-ha's constructs and the imported stores satisfy them, the Harbor fleet runs on imported stores without
creating any, and a bad attribute is one line naming it. (examples/existing_data gives them as Terraform
references and terraform validate judges that, tests/test_examples.py.)"""

from __future__ import annotations

import pytest

from harbor_ha.constructs.cache import HarborCache
from harbor_ha.constructs.database import HarborDatabase
from harbor_ha.constructs.harbor_fleet import HarborFleet, HarborFleetProps
from harbor_ha.constructs.interfaces import (
    AccessLogSink, Cache, Connectable, Database, ImageStorage, LoadBalancingTargets, Network,
)
from harbor_ha.constructs.network import HarborNetwork, HarborNetworkProps
from harbor_ha.constructs.shared_data import SharedData
from harbor_ha.constructs.storage import RegistryStorage
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks.base import HarborHaStack
from harbor_ha.stacks.props import shared_data_props

from conftest import TEST_LOCAL_ENDPOINT, resources
from harbor_vm_helpers import environment, written_files

DB_GROUP, REDIS_GROUP = "sg-0000000000000000d", "sg-0000000000000000c"
DB_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1234-AbCdEf"
REDIS_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:redis-token-AbCdEf"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ATTRIBUTES = {
    "database": dict(db_address="harbor.abc.us-east-1.rds.amazonaws.com", master_user_secret_arn=DB_SECRET,
                     security_group_id=DB_GROUP, resource_id="db-M5ENSHXFPU6XHZ4G4ZEI5QIO2U"),
    "cache": dict(redis_endpoint="master.harbor.abc.use1.cache.amazonaws.com", auth_token_secret_arn=REDIS_SECRET,
                  security_group_id=REDIS_GROUP, secret_kms_key_arn=KEY),
    "storage": dict(bucket_name="corp-harbor-images", region="us-east-1", kms_key_arn=KEY),
}
IMPORTERS = {"database": HarborDatabase.from_attributes, "cache": HarborCache.from_attributes,
             "storage": RegistryStorage.from_attributes}


@pytest.fixture(scope="module")
def built(app, synth):
    stack = HarborHaStack(app, "importers", settings=HarborHaSettings(), local_endpoint=TEST_LOCAL_ENDPOINT)
    network = HarborNetwork(stack, "network", props=HarborNetworkProps(name="harbor",
                                                                      availability_zones=("us-east-1a", "us-east-1b")))
    stores = {kind: IMPORTERS[kind](stack, kind, **ATTRIBUTES[kind]) for kind in IMPORTERS}
    fleet = HarborFleet(stack, "harbor", props=HarborFleetProps(network=network, hostname="registry.example.com",
                                                                **stores))
    return stack, network, stores, fleet, synth(stack)


def test_the_fleet_on_imported_stores_creates_none_of_them(built):
    *_, doc = built
    assert not {"aws_db_instance", "aws_elasticache_replication_group"} & set(doc["resource"])
    (bucket,) = resources(doc, "aws_s3_bucket")
    assert bucket.startswith("network_logs"), "the one bucket is the network's log bucket"


def test_each_given_security_group_admits_the_fleet(built):
    *_, fleet, doc = built
    fleet_group = f"${{aws_security_group.{next(n for n in resources(doc, 'aws_security_group') if 'harbor_hosts' in n)}.id}}"
    admitted = {(r["security_group_id"], r["from_port"], r["to_port"])
                for r in resources(doc, "aws_vpc_security_group_ingress_rule").values()
                if r.get("referenced_security_group_id") == fleet_group}
    assert admitted == {(DB_GROUP, 5432, 5432), (REDIS_GROUP, 6379, 6379)}


def test_the_fleet_reads_the_given_secrets_and_uses_the_given_bucket(built):
    *_, doc = built
    documents = doc["data"]["aws_iam_policy_document"]
    statements = {name.split("_policy-")[0]: [(s["actions"], s["resources"]) for s in body["statement"]]
                  for name, body in documents.items() if name.split("_")[0] in IMPORTERS}
    read = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    # The database secret has the AWS managed key: no KMS statement; the Redis secret a customer key.
    assert statements["database"] == [(read, [DB_SECRET])]
    assert statements["cache"] == [(read, [REDIS_SECRET]), (["kms:Decrypt"], [KEY])]
    (bucket, objects, key) = statements["storage"]
    assert bucket[1][0].endswith(":s3:::corp-harbor-images") and bucket[1][0].startswith("arn:${data.aws_partition.")
    assert objects[1] == [bucket[1][0] + "/*"] and key == (["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"], [KEY])


def test_the_nodes_are_configured_for_the_given_stores(built):
    *_, fleet, _ = built
    files = "\n".join(written_files(fleet.user_data[0]).values())
    for value in ("harbor.abc.us-east-1.rds.amazonaws.com", "master.harbor.abc.use1.cache.amazonaws.com",
                  "corp-harbor-images", KEY):
        assert value in files, value
    assert (environment(fleet.user_data[0])["DB_SECRET_ARN"], environment(fleet.user_data[0])["REDIS_SECRET_ARN"]) == (
        DB_SECRET, REDIS_SECRET)


def test_constructs_and_imported_stores_satisfy_the_protocols(built, app, settings):
    _, network, stores, fleet, _ = built
    assert isinstance(network, Network) and isinstance(network.log_bucket, AccessLogSink)
    assert isinstance(stores["database"], Database) and isinstance(stores["cache"], Cache)
    assert isinstance(stores["storage"], ImageStorage)
    assert isinstance(fleet, LoadBalancingTargets) and isinstance(fleet, Connectable)
    stack = HarborHaStack(app, "protocols", settings=settings, local_endpoint=TEST_LOCAL_ENDPOINT)
    own = HarborNetwork(stack, "network", props=HarborNetworkProps(name="harbor",
                                                                  availability_zones=("us-east-1a", "us-east-1b")))
    data = SharedData(stack, "data", props=shared_data_props(settings, own))
    assert (isinstance(data.database, Database), isinstance(data.cache, Cache),
            isinstance(data.storage, ImageStorage)) == (True, True, True)
    assert not isinstance(data.storage, Database)


@pytest.mark.parametrize("kind, changes, argument", [
    ("database", dict(security_group_id="default"), "security_group_id"),
    ("database", dict(db_port=0), "db_port"),
    ("database", dict(db_address=""), "db_address"),
    ("database", dict(master_user_secret_arn="rds!db-1234"), "master_user_secret_arn"),
    ("database", dict(secret_kms_key_arn="alias/aws/secretsmanager"), "secret_kms_key_arn"),
    ("database", dict(resource_id="harbor/db"), "resource_id"),
    ("cache", dict(redis_port="6379"), "redis_port"),
    ("cache", dict(auth_token_secret_arn=""), "auth_token_secret_arn"),
    ("storage", dict(bucket_name="Corp_Images"), "bucket_name"),
    ("storage", dict(region="mars-1"), "region"),
    ("storage", dict(kms_key_arn="alias/harbor"), "kms_key_arn"),
])
def test_a_bad_attribute_is_one_line_naming_it(app, settings, kind, changes, argument):
    stack = HarborHaStack(app, f"bad-{kind}-{argument}", settings=settings, local_endpoint=TEST_LOCAL_ENDPOINT)
    with pytest.raises(ValueError, match=rf"^{argument} = .*: allowed is [^\n]+$"):
        IMPORTERS[kind](stack, kind, **{**ATTRIBUTES[kind], **changes})
    assert stack.node.try_find_child(kind) is None, "nothing is made before the check"
