"""StandaloneHarborNode: one Harbor with its own database, Redis and storage (S3 bucket or an EBS volume
kept apart from the instance), a generate-once admin password, user-data that cloud-init and shellcheck
accept, and a hook for more boot steps."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import yaml

from harbor_ha.cloud_init import CloudConfig
from harbor_ha.constructs.harbor_node import StandaloneHarborNode, StandaloneHarborNodeProps
from harbor_ha.constructs.network import HarborNetwork, HarborNetworkProps
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks.base import HarborHaStack

from conftest import (
    TEST_LOCAL_ENDPOINT, CdktfTesting, image_buckets, resources, terraform_validate, written_once_from_a_generator,
)
from data_tier_helpers import assert_rejected
from harbor_vm_helpers import (
    PLAINTEXT_SECRETS, check_hardened, check_user_data, environment, role_policies, written_files,
)

ZONES = ("us-east-1a", "us-east-1b")


class NodeStack(HarborHaStack):
    def __init__(self, scope, id_, **props):
        super().__init__(scope, id_, settings=HarborHaSettings(), local_endpoint=TEST_LOCAL_ENDPOINT)
        network = HarborNetwork(self, "network", props=HarborNetworkProps(name="harbor", availability_zones=ZONES))
        self.harbor = StandaloneHarborNode(self, "harbor", props=StandaloneHarborNodeProps(network=network, **props))


@pytest.fixture(scope="module")
def ebs(app):
    stack = NodeStack(app, "harbor-node-ebs", storage="ebs", public=True, zone_index=1, data_volume_gib=300)
    stack.harbor.add_cloud_config(CloudConfig(commands=("echo configure replication",)))
    stack.harbor.allow_from_cidrs(["198.51.100.0/24"])
    text = CdktfTesting.synth(stack)
    return stack, text, json.loads(text)


@pytest.fixture(scope="module")
def s3(app):
    stack = NodeStack(app, "harbor-node-s3", storage="s3")
    stack.harbor.allow_from(SimpleNamespace(security_group_id="sg-0123456789abcdef0"))
    return stack, json.loads(CdktfTesting.synth(stack))


def node_addresses(doc: dict) -> dict:
    """The node's Elastic IPs (the network's NAT gateways have their own)."""
    return {name: body for name, body in resources(doc, "aws_eip").items() if body["tags"]["Name"] == "harbor"}


def the_instance(doc: dict) -> dict:
    (instance,) = resources(doc, "aws_instance").values()
    return instance


def test_ebs_node_keeps_its_data_on_a_separate_encrypted_volume(ebs):
    stack, _, doc = ebs
    (name, volume), = resources(doc, "aws_ebs_volume").items()
    assert (volume["availability_zone"], volume["size"], volume["type"], volume["encrypted"]) == (
        "us-east-1b", 300, "gp3", True)
    assert volume["kms_key_id"].startswith("${aws_kms_key.")
    (attachment,) = resources(doc, "aws_volume_attachment").values()
    (instance_name,) = resources(doc, "aws_instance")
    assert attachment["volume_id"] == f"${{aws_ebs_volume.{name}.id}}"
    assert attachment["instance_id"] == f"${{aws_instance.{instance_name}.id}}"
    assert attachment["stop_instance_before_detaching"] is True
    # The volume is not part of the instance: replacing the instance keeps it.
    assert "ebs_block_device" not in the_instance(doc)
    assert not image_buckets(doc)
    assert environment(stack.harbor.user_data)["DATA_VOLUME_ID"].startswith("${TfToken[")


def test_public_node_gets_an_elastic_ip_and_its_url(ebs):
    stack, _, doc = ebs
    (eip_name,) = node_addresses(doc)
    (association,) = resources(doc, "aws_eip_association").values()
    assert association["allocation_id"] == f"${{aws_eip.{eip_name}.allocation_id}}"
    subnets = {f"${{aws_subnet.{name}.id}}": body for name, body in resources(doc, "aws_subnet").items()}
    subnet = subnets[the_instance(doc)["subnet_id"]]
    assert (subnet["tags"]["Name"], subnet["availability_zone"]) == ("harbor-public-us-east-1b", "us-east-1b")
    assert stack.harbor.public_ip is not None
    assert the_instance(doc)["associate_public_ip_address"] is True
    assert environment(stack.harbor.user_data)["HARBOR_HOSTNAME"].startswith("${TfToken[")
    ingress = [(r["cidr_ipv4"], r["from_port"]) for r in resources(doc, "aws_vpc_security_group_ingress_rule").values()]
    assert sorted(ingress) == [("198.51.100.0/24", 80), ("198.51.100.0/24", 443)]


def test_node_is_hardened_and_its_boot_is_valid(ebs, tmp_path):
    stack, text, doc = ebs
    check_hardened(doc, the_instance(doc), volume_gib=100)
    files = check_user_data(stack.harbor.user_data, tmp_path)
    harbor_yml = yaml.safe_load(files["/etc/harbor-ha/harbor.yml.tmpl"])
    # Harbor's own database and Redis, images under /data (the EBS volume).
    assert not {"external_database", "external_redis", "storage_service"} & set(harbor_yml)
    runcmd = [c[-1] if isinstance(c, list) else c for c in yaml.safe_load(stack.harbor.user_data)["runcmd"]]
    assert [c.rsplit("/", 1)[-1] for c in runcmd] == ["", "data-volume.sh", "install-harbor.sh", "configure-harbor.sh",
                                                      "echo configure replication"]
    # The hook reaches the instance's user-data, not only the attribute.
    assert "echo configure replication" in the_instance(doc)["user_data"]
    assert "shared-secrets.sh" not in stack.harbor.user_data
    for secret in PLAINTEXT_SECRETS:
        assert secret not in text


def test_admin_password_is_generated_once(ebs):
    stack, _, doc = ebs
    (secret,) = resources(doc, "aws_secretsmanager_secret").values()
    assert secret["kms_key_id"].startswith("${aws_kms_key.")
    (version,) = resources(doc, "aws_secretsmanager_secret_version").values()
    generator = written_once_from_a_generator(doc, version)
    assert generator["require_each_included_type"] is True and generator["password_length"] >= 16
    assert environment(stack.harbor.user_data)["ADMIN_SECRET_ARN"].startswith("${TfToken[")
    assert list(role_policies(doc)) == ["hosts-read-admin-password"]


def test_s3_node_has_its_own_bucket_and_a_private_address(s3):
    stack, doc = s3
    assert len(image_buckets(doc)) == 1
    assert not resources(doc, "aws_ebs_volume") and not node_addresses(doc)
    assert stack.harbor.public_ip is None and stack.harbor.storage is not None
    harbor_yml = yaml.safe_load(written_files(stack.harbor.user_data)["/etc/harbor-ha/harbor.yml.tmpl"])
    assert set(harbor_yml["storage_service"]["s3"]) >= {"bucket", "region", "keyid"}
    assert "external_database" not in harbor_yml
    assert sorted(role_policies(doc)) == ["hosts-read-admin-password", "storage-read-write"]
    assert environment(stack.harbor.user_data)["HARBOR_HOSTNAME"] == ""  # the private address, found at boot
    subnets = {f"${{aws_subnet.{name}.id}}": body for name, body in resources(doc, "aws_subnet").items()}
    assert subnets[the_instance(doc)["subnet_id"]]["tags"]["Name"] == "harbor-private-us-east-1a"
    ingress = [(r["referenced_security_group_id"], r["from_port"])
               for r in resources(doc, "aws_vpc_security_group_ingress_rule").values()]
    assert sorted(ingress) == [("sg-0123456789abcdef0", 80), ("sg-0123456789abcdef0", 443)]


def test_node_snapshot(ebs, snapshot):
    _, _, doc = ebs
    assert doc == snapshot


def test_terraform_validate_accepts_the_node(ebs, tmp_path, monkeypatch):
    _, text, _ = ebs
    terraform_validate(tmp_path, text, monkeypatch)


@pytest.mark.parametrize("change, prop, allowed", [
    ({"storage": "efs"}, "storage", "one of 's3', 'ebs'"),
    ({"data_volume_gib": 5}, "data_volume_gib", "from 20 to 16384"),
    ({"zone_index": -1}, "zone_index", "the index of one of the network's AZs"),
    ({"harbor_version": "2.15"}, "harbor_version", "a Harbor release number X.Y.Z"),
    ({"instance_type": "large"}, "instance_type", "EC2 instance type harbor-ha knows"),
])
def test_bad_props_name_the_prop(change, prop, allowed):
    assert_rejected(lambda: StandaloneHarborNodeProps(network=None, **change), prop, allowed)


def test_zone_index_beyond_the_network_is_rejected(app, stack_id):
    with pytest.raises(ValueError, match=r"^zone_index = 2: allowed is below the number of the network's AZs \(2\)"):
        NodeStack(app, stack_id, zone_index=2)
