"""HarborFleet: n hardened Harbor servers over the AZs, wired to the shared database, Redis and bucket,
with user-data that cloud-init and shellcheck accept and that carries no secret; least-privilege IAM."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from types import SimpleNamespace

import pytest
import yaml

from harbor_ha.cloud_init import CloudConfig, WriteFile
from harbor_ha.harbor_boot import CARRIED_PREFIX, CARRIED_STEPS, carried_step
from harbor_ha.constructs.cache import HarborCache
from harbor_ha.constructs.database import HarborDatabase
from harbor_ha.constructs.harbor_fleet import HarborFleet, HarborFleetProps
from harbor_ha.constructs.network import HarborNetwork, HarborNetworkProps
from harbor_ha.constructs.static_ips import StaticIps, StaticIpsProps
from harbor_ha.constructs.storage import RegistryStorage
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks.base import HarborHaStack
from harbor_ha.stacks.props import cache_props, database_props, fleet_props, storage_props

from conftest import TEST_LOCAL_ENDPOINT, CdktfTesting, require_tool, resources, terraform_validate, written_once_from_a_generator
from data_tier_helpers import assert_rejected
from harbor_vm_helpers import (
    PLAINTEXT_SECRETS, check_hardened, check_user_data, environment, role_policies,
    written_files,
)

ZONES = ("us-east-1a", "us-east-1b")
LB_GROUP = "sg-0123456789abcdef0"


class FleetStack(HarborHaStack):
    """The active-active data tier and three Harbor servers at fixed addresses."""

    def __init__(self, scope, id_, *, settings: HarborHaSettings, **props):
        super().__init__(scope, id_, settings=settings, local_endpoint=TEST_LOCAL_ENDPOINT)
        network = HarborNetwork(self, "network", props=HarborNetworkProps(name="harbor", availability_zones=ZONES))
        self.ips = StaticIps(self, "static-ips", props=StaticIpsProps(network=network, name="harbor",
                                                                        harbor_count=3, lb_count=2))
        storage = RegistryStorage(self, "storage", props=storage_props(settings))
        database = HarborDatabase(self, "database", props=database_props(settings, network))
        cache = HarborCache(self, "cache", props=cache_props(settings, network))
        self.fleet = HarborFleet(self, "harbor", props=fleet_props(
            settings, network=network, storage=storage, database=database, cache=cache,
            addresses=self.ips.harbor_addresses, hostname=self.ips.vip_address, **props))


@pytest.fixture(scope="module")
def built(app):
    keepalived = CloudConfig(packages=("keepalived",), files=(WriteFile(path="/etc/keepalived/x", content="x"),))
    stack = FleetStack(app, "harbor-fleet", settings=HarborHaSettings(), extra_cloud_config=keepalived,
                       extra_cloud_config_per_node=tuple(CloudConfig(commands=(f"echo node {i}",)) for i in range(3)))
    stack.fleet.allow_from(SimpleNamespace(security_group_id=LB_GROUP))
    text = CdktfTesting.synth(stack)
    return stack, text, json.loads(text)


def servers(doc: dict) -> list[dict]:
    return [body for name, body in sorted(resources(doc, "aws_instance").items())]


def test_servers_spread_over_the_zones_at_their_fixed_addresses(built):
    stack, _, doc = built
    subnets = {f"${{aws_subnet.{name}.id}}": body for name, body in resources(doc, "aws_subnet").items()}
    placed = [(subnets[s["subnet_id"]]["availability_zone"], s["private_ip"]) for s in servers(doc)]
    assert placed == [("us-east-1a", "10.40.128.10"), ("us-east-1b", "10.40.192.10"), ("us-east-1a", "10.40.128.11")]
    assert len({zone for zone, _ in placed}) >= 2
    assert len(stack.fleet.instance_ids) == len(stack.fleet.private_ips) == 3


def test_servers_are_hardened(built):
    _, _, doc = built
    for server in servers(doc):
        # Room for resolved ARNs and endpoints, which are longer than their references.
        assert len(server["user_data"].encode()) < 14 * 1024
        check_hardened(doc, server, volume_gib=100)
        assert server["instance_type"] == "m6i.large"
        assert server["iam_instance_profile"].startswith("${aws_iam_instance_profile.")


def test_security_group_admits_only_the_peer_and_egress_is_limited(built):
    _, _, doc = built
    group = next(name for name, body in resources(doc, "aws_security_group").items()
                 if body["description"].startswith("harbor: Harbor servers"))
    ref = f"${{aws_security_group.{group}.id}}"
    assert "ingress" not in resources(doc, "aws_security_group")[group]
    ingress = [r for r in resources(doc, "aws_vpc_security_group_ingress_rule").values()
               if r["security_group_id"] == ref]
    assert sorted((r["from_port"], r.get("referenced_security_group_id")) for r in ingress) == [
        (80, LB_GROUP), (443, LB_GROUP)]
    egress = [r for r in resources(doc, "aws_vpc_security_group_egress_rule").values() if r["security_group_id"] == ref]
    assert sorted((r["from_port"], r["to_port"], r["cidr_ipv4"]) for r in egress) == [
        (443, 443, "0.0.0.0/0"), (5432, 5432, "10.40.0.0/16"), (6379, 6379, "10.40.0.0/16")]
    # The database and cache admit the fleet's group.
    admitted = {(r["from_port"], r["referenced_security_group_id"])
                for r in resources(doc, "aws_vpc_security_group_ingress_rule").values()
                if r.get("referenced_security_group_id") == ref}
    assert admitted == {(5432, ref), (6379, ref)}


def test_ssh_only_from_the_given_networks_and_public_addresses_only_when_asked(built, app, stack_id, synth):
    assert all("associate_public_ip_address" not in server for server in servers(built[2]))
    doc = synth(FleetStack(app, stack_id, settings=HarborHaSettings(ssh_cidrs=("192.0.2.0/24",)),
                           public_addresses=True))
    assert all(server["associate_public_ip_address"] is True for server in servers(doc))
    ssh = [r for r in resources(doc, "aws_vpc_security_group_ingress_rule").values() if r["from_port"] == 22]
    assert [(r["cidr_ipv4"], r["to_port"]) for r in ssh] == [("192.0.2.0/24", 22)]


def test_iam_is_least_privilege(built):
    stack, _, doc = built
    policies = role_policies(doc)
    shared = policies["hosts-shared-secrets"]
    assert [(s["actions"], len(s["resources"])) for s in shared] == [
        (["secretsmanager:CreateSecret"], 1), (["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], 1),
        (["kms:GenerateDataKey", "kms:Decrypt"], 1)]
    arn = shared[0]["resources"][0]
    assert re.fullmatch(r"arn:\$\{data\.aws_partition\.[^}]+\}:secretsmanager:\$\{data\.aws_region\.[^}]+\}:"
                        r"\$\{data\.aws_caller_identity\.[^}]+\}:secret:harbor-ha/harbor/shared-secrets-"
                        r"\$\{aws_kms_key\.[^}]+\.key_id\}-\?\?\?\?\?\?", arn), arn
    assert shared[0]["condition"][0]["variable"] == "secretsmanager:KmsKeyId"
    # The schema-migration locks: read and create or overwrite the deployment's own lock parameters only.
    (lock,) = policies["hosts-schema-lock"]
    assert lock["actions"] == ["ssm:GetParameter", "ssm:PutParameter"]
    assert re.fullmatch(r"arn:\$\{data\.aws_partition\.[^}]+\}:ssm:\$\{data\.aws_region\.[^}]+\}:"
                        r"\$\{data\.aws_caller_identity\.[^}]+\}:parameter/harbor-ha/harbor/schema-migration/\*",
                        lock["resources"][0]), lock
    for name, statements in policies.items():
        for s in statements:
            assert not any(a.endswith(":*") or a == "*" for a in s["actions"]), (name, s)
            if s["resources"] == ["*"]:
                assert s["actions"] == ["ec2:DescribeAddresses"], (name, s)
    # The shared stores grant to the fleet's role: bucket, database secret, Redis token, admin password.
    assert {"storage-read-write", "database-read-master-secret", "cache-read-auth-token",
            "hosts-read-admin-password", "hosts-shared-secrets"} <= set(policies)
    roles = {body["role"] for body in resources(doc, "aws_iam_role_policy").values()}
    assert len(roles) == 1


def test_user_data_is_valid_and_carries_no_secret(built, tmp_path):
    stack, text, doc = built
    assert len(stack.fleet.user_data) == 3
    for i, user_data in enumerate(stack.fleet.user_data):
        files = check_user_data(user_data, tmp_path)
        assert "/etc/keepalived/x" in files and f"echo node {i}" in user_data
        env = environment(user_data)
        assert {"DB_SECRET_ARN", "REDIS_SECRET_ARN", "ADMIN_SECRET_ARN", "SHARED_SECRET_NAME",
                "SHARED_SECRET_KMS_KEY", "HARBOR_HOSTNAME", "HARBOR_VERSION", "AWS_DEFAULT_REGION"} <= set(env)
        assert env["HARBOR_VERSION"] == "2.15.2" and env["TLS_SECRET_ARN"] == ""
        harbor_yml = files["/etc/harbor-ha/harbor.yml.tmpl"]
        assert "ssl_mode: require" in harbor_yml and "accesskey" not in harbor_yml
    for secret in PLAINTEXT_SECRETS:
        assert secret not in text
    for body in resources(doc, "aws_secretsmanager_secret_version").values():
        written_once_from_a_generator(doc, body)


def test_servers_boot_in_order(built):
    stack, _, _ = built
    user_data = stack.fleet.user_data[0]
    runcmd = [c[-1] if isinstance(c, list) else c for c in yaml.safe_load(user_data)["runcmd"]]
    assert [c.rsplit("/", 1)[-1] for c in runcmd] == ["", "install-harbor.sh", "shared-secrets.sh",
                                                      "configure-harbor.sh", "start-harbor.sh",
                                                      "systemctl daemon-reload",
                                                      "systemctl enable --now harbor-health-report.timer",
                                                      "echo node 0"]
    assert "/etc/systemd/system/harbor.service" in written_files(user_data)


def test_steps_without_room_in_user_data_travel_in_the_bucket(built):
    """shared-secrets.sh and start-harbor.sh are objects of the fleet's bucket that run-step.sh fetches
    (BOOT_PROGRAMS); every server waits for them, and its user-data does not carry them."""
    _, _, doc = built
    objects = resources(doc, "aws_s3_object")
    carried = {body["key"]: body for body in objects.values() if body["key"].startswith(CARRIED_PREFIX + "/")}
    assert sorted(carried) == [f"{CARRIED_PREFIX}/{step}" for step in sorted(CARRIED_STEPS)]
    (bucket,) = {body["bucket"] for body in carried.values()}
    assert re.fullmatch(r"\$\{aws_s3_bucket\.storage_bucket_[0-9A-F]+\.bucket\}", bucket), "the shared bucket"
    for key, body in carried.items():
        assert base64.b64decode(body["content_base64"]).decode() == carried_step(key.rsplit("/", 1)[-1])
    names = {f"aws_s3_object.{name}" for name, body in objects.items() if body["key"] in carried}
    for server in servers(doc):
        assert names <= set(server["depends_on"])
        assert environment(server["user_data"])["BOOT_PROGRAMS"] == f"s3://{bucket}/{CARRIED_PREFIX}"
        assert not {f"/usr/local/libexec/harbor-ha/{step}" for step in CARRIED_STEPS} & set(
            written_files(server["user_data"]))


def test_servers_start_harbor_under_their_databases_schema_lock(built):
    """One lock per database instance (its resource id: a new or restored database finds no old lock) and
    Harbor release, under the prefix the role may write."""
    _, _, doc = built
    for server in servers(doc):
        lock = environment(server["user_data"])["SCHEMA_LOCK_PARAMETER"]
        assert re.fullmatch(r"/harbor-ha/harbor/schema-migration/\$\{aws_db_instance\.[^}]+\.resource_id\}/harbor-2\.15\.2",
                            lock), lock


@pytest.mark.parametrize("step", CARRIED_STEPS)
def test_the_carried_steps_pass_shellcheck(step, tmp_path):
    """What the bucket carries, as the node runs it (check_user_data judges the scripts user-data carries)."""
    script = tmp_path / step
    script.write_text(carried_step(step))
    result = subprocess.run([require_tool("shellcheck"), str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_fleet_snapshot(built, snapshot):
    _, _, doc = built
    assert doc == snapshot


def test_terraform_validate_accepts_the_fleet(built, tmp_path, monkeypatch):
    _, text, _ = built
    terraform_validate(tmp_path, text, monkeypatch)


@pytest.mark.parametrize("change, prop, allowed", [
    ({"count": 1}, "count", "a whole number from 2 to 20"),
    ({"harbor_version": "2.12.0"}, "harbor_version", "from 2.13.0 on"),
    ({"tls_certificate": "mine.pem"}, "tls_certificate", "'self-signed' or the ARN"),
    ({"ssh_cidrs": ("0.0.0.0/0",)}, "ssh_cidrs", "narrower than the whole internet"),
    ({"volume_gib": 10}, "volume_gib", "from 20 to 16384"),
    ({"hostname": ""}, "hostname", "a DNS name or the VIP address"),
    ({"extra_cloud_config_per_node": (CloudConfig(),)}, "extra_cloud_config_per_node", "one per server (2)"),
])
def test_bad_props_name_the_prop(change, prop, allowed):
    base = dict(network=None, storage=None, database=None, cache=None, hostname="registry.example.com")
    assert_rejected(lambda: HarborFleetProps(**{**base, **change}), prop, allowed)
