"""LoadBalancerPair: two hardened directors in two AZs whose user-data installs a keepalived + LVS setup that
keepalived, cloud-init and shellcheck accept. (On the local AWS target, tests/test_e2e.py moves the VIP of
the deployed active-active and active-standby stacks and expects an empty plan after it.)"""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import pytest
import yaml

from harbor_ha.constructs.lb_pair import AL2023_X86_64, LoadBalancerPair, LoadBalancerPairProps
from harbor_ha.constructs.network import HarborNetwork, HarborNetworkProps
from harbor_ha.constructs.static_ips import PlacedAddress, StaticIps, StaticIpsProps
from harbor_ha.keepalived import LIBEXEC, VRRP_CONFIG_PATH, program_text
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks.base import HarborHaStack
from harbor_ha.terraform_config import terraform_env

from conftest import TEST_LOCAL_ENDPOINT, CdktfTesting, require_tool, resources
from harbor_vm_helpers import written_files
from keepalived_helpers import check_installed_config

ZONES = ("us-east-1a", "us-east-1b")
HARBOR_IPS = ("10.40.128.10", "10.40.192.10")


class FleetStandIn:
    """Stands in for the ``HarborFleet`` the pair balances: its target addresses and security group, and the
    ``allow_from`` calls the pair makes on it (recorded in ``allowed``)."""

    def __init__(self, target_ips, security_group_id: str = "sg-0123456789abcdef0") -> None:
        self.target_ips = list(target_ips)
        self.security_group_id = security_group_id
        self.allowed: list[tuple] = []

    def allow_from(self, peer, ports) -> None:
        self.allowed.append((peer, list(ports)))


class LbStack(HarborHaStack):
    """Network, static addresses and the LB pair, as the active-active stack wires them."""

    def __init__(self, scope, id_, *, settings: HarborHaSettings, local_endpoint: str | None = None,
                 target_ips: tuple[str, ...] = (), **props):
        super().__init__(scope, id_, settings=settings, local_endpoint=local_endpoint)
        self.network = HarborNetwork(self, "network", props=HarborNetworkProps(name="harbor", availability_zones=ZONES))
        self.static_ips = StaticIps(self, "static-ips", props=StaticIpsProps(
            network=self.network, name="harbor", harbor_count=2))
        self.fleet = FleetStandIn(target_ips or [a.private_ip for a in self.static_ips.harbor_addresses])
        self.lb = LoadBalancerPair(self, "lb", props=LoadBalancerPairProps(
            network=self.network, static_ips=self.static_ips, targets=self.fleet, **props))


@pytest.fixture(scope="module")
def built(app):
    stack = LbStack(app, "lb-pair", settings=HarborHaSettings(), local_endpoint=TEST_LOCAL_ENDPOINT)
    return stack, json.loads(CdktfTesting.synth(stack))


def directors(doc: dict) -> list[dict]:
    return [body for _, body in sorted(resources(doc, "aws_instance").items())]


def test_two_directors_in_two_zones_at_fixed_addresses(built):
    stack, doc = built
    subnets = {f"${{aws_subnet.{name}.id}}": body for name, body in resources(doc, "aws_subnet").items()}
    placed = [(subnets[d["subnet_id"]]["tags"]["Name"], d["private_ip"]) for d in directors(doc)]
    assert placed == [("harbor-public-us-east-1a", "10.40.0.10"), ("harbor-public-us-east-1b", "10.40.64.10")]
    assert stack.lb.private_ips == ["10.40.0.10", "10.40.64.10"]


def test_directors_are_hardened(built):
    _, doc = built
    (ami_name, ami), = doc["data"]["aws_ssm_parameter"].items()
    assert ami["name"] == AL2023_X86_64
    (profile_name, _), = resources(doc, "aws_iam_instance_profile").items()
    for director in directors(doc):
        assert director["ami"] == f"${{data.aws_ssm_parameter.{ami_name}.value}}"
        ignored = director["lifecycle"]["ignore_changes"]
        assert ignored == ["ami", 'tags["harbor-ha:lb-pool"]', 'tags_all["harbor-ha:lb-pool"]', "ebs_optimized"], (
            "neither a new AMI nor EBS optimization may stop or replace a running director; lb-pool's own report")
        assert director["monitoring"] is True and director["ebs_optimized"] is True
        assert director["metadata_options"] == {"http_endpoint": "enabled", "http_tokens": "required",
                                                "http_put_response_hop_limit": 1}
        assert director["root_block_device"] == {"encrypted": True, "volume_type": "gp3", "volume_size": 16}
        assert director["instance_type"] == "t3.small"
        assert director["iam_instance_profile"] == f"${{aws_iam_instance_profile.{profile_name}.name}}"
        assert director["tags"]["harbor-ha:vip"] == "harbor", "the VIP grant only reaches tagged instances"
        assert director["associate_public_ip_address"] is True, "the BACKUP reaches the EC2 API without the VIP"


def test_vip_starts_on_director_0_and_is_then_left_to_keepalived(built):
    _, doc = built
    (vip,) = [e for e in resources(doc, "aws_eip").values() if e["tags"].get("harbor-ha:vip")]
    (first, _) = sorted(resources(doc, "aws_instance"))
    assert vip["instance"] == f"${{aws_instance.{first}.id}}"
    assert "instance" in vip["lifecycle"]["ignore_changes"]


def test_role_can_move_the_vip_and_use_session_manager_only(built):
    stack, doc = built
    (role_name, role), = resources(doc, "aws_iam_role").items()
    assert json.loads(role["assume_role_policy"])["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    policies = resources(doc, "aws_iam_role_policy").values()
    assert sorted(p["name"] for p in policies) == ["lb-lb-pool", "static-ips-associate-vip"]
    assert all(p["role"] == f"${{aws_iam_role.{role_name}.name}}" for p in policies)
    (attachment,) = resources(doc, "aws_iam_role_policy_attachment").values()
    assert attachment["policy_arn"].endswith(":iam::aws:policy/AmazonSSMManagedInstanceCore")


def test_directors_read_the_pool_parameter_and_may_set_only_their_report_tag(built):
    stack, doc = built
    (parameter,) = resources(doc, "aws_ssm_parameter").values()
    assert stack.lb.pool_parameter == parameter["name"] == "/harbor-ha/harbor/lb/real-servers"
    (key_name, key), = resources(doc, "aws_kms_key").items()
    assert parameter["type"] == "SecureString" and parameter["key_id"] == f"${{aws_kms_key.{key_name}.arn}}"
    assert key["enable_key_rotation"] is True
    assert parameter["value"] == ('${jsonencode({"servers" = [{"address" = "10.40.128.10", "weight" = 1}, '
                                  '{"address" = "10.40.192.10", "weight" = 1}]})}')
    statements = [s for d in doc["data"]["aws_iam_policy_document"].values() if any(
        "ssm:GetParameter" in st["actions"] for st in d["statement"]) for s in d["statement"]]
    assert statements[0]["actions"] == ["ssm:GetParameter"]
    assert statements[0]["resources"][0].endswith(":parameter/harbor-ha/harbor/lb/real-servers")
    assert "aws_ssm_parameter" not in statements[0]["resources"][0], "a pool change must not re-plan the policy"
    assert statements[1] == {"actions": ["kms:Decrypt"], "effect": "Allow",
                             "resources": [f"${{aws_kms_key.{key_name}.arn}}"]}
    assert statements[2]["actions"] == ["ec2:CreateTags"]
    assert statements[2]["resources"][0].endswith(":ec2:*:*:instance/*")
    assert statements[2]["condition"] == [
        {"test": "StringEquals", "variable": "aws:ResourceTag/harbor-ha:role", "values": ["lb"]},
        {"test": "StringEquals", "variable": "aws:ResourceTag/harbor-ha:deployment", "values": ["harbor"]},
        {"test": "ForAllValues:StringEquals", "variable": "aws:TagKeys", "values": ["harbor-ha:lb-pool"]}]


def test_directors_user_data_does_not_depend_on_the_harbor_servers(app, stack_id, synth, built):
    """Scaling the fleet must neither stop nor replace a director: their user-data names no server."""
    _, doc = built
    bigger = synth(LbStack(app, stack_id, settings=HarborHaSettings(), target_ips=HARBOR_IPS + ("10.40.128.11",)))
    assert [d["user_data"] for d in directors(bigger)] == [d["user_data"] for d in directors(doc)]
    assert all(ip not in d["user_data"] for d in directors(doc) for ip in HARBOR_IPS)
    (parameter,) = resources(bigger, "aws_ssm_parameter").values()
    assert "10.40.128.11" in parameter["value"]


def rules(doc: dict, kind: str) -> list[tuple]:
    return sorted((r["ip_protocol"], r.get("from_port"), r.get("cidr_ipv4") or "group")
                  for r in resources(doc, f"aws_vpc_security_group_{kind}_rule").values())


def test_security_group_admits_clients_and_vrrp_from_the_peer_only(built):
    _, doc = built
    (group_name, group), = resources(doc, "aws_security_group").items()
    group_id = f"${{aws_security_group.{group_name}.id}}"
    assert "ingress" not in group and "egress" not in group
    assert rules(doc, "ingress") == [("112", None, "group"), ("tcp", 80, "0.0.0.0/0"), ("tcp", 443, "0.0.0.0/0")]
    (vrrp,) = [r for r in resources(doc, "aws_vpc_security_group_ingress_rule").values() if r["ip_protocol"] == "112"]
    assert vrrp["referenced_security_group_id"] == group_id
    assert rules(doc, "egress") == [("112", None, "group"), ("tcp", 80, "0.0.0.0/0"), ("tcp", 443, "0.0.0.0/0")]


def test_ssh_and_client_networks_follow_the_props(app, stack_id, synth):
    stack = LbStack(app, stack_id, settings=HarborHaSettings(), client_cidrs=("192.0.2.0/24",),
                    ssh_cidrs=("198.51.100.7/32",), ssm_access=False)
    doc = synth(stack)
    assert rules(doc, "ingress") == [("112", None, "group"), ("tcp", 22, "198.51.100.7/32"),
                                     ("tcp", 80, "192.0.2.0/24"), ("tcp", 443, "192.0.2.0/24")]
    assert "aws_iam_role_policy_attachment" not in doc["resource"]


def test_user_data_carries_the_rendered_keepalived_configs(built):
    stack, doc = built
    for index, director in enumerate(directors(doc)):
        assert director["user_data"].startswith("#cloud-config\n")
        files = written_files(director["user_data"])
        assert files[VRRP_CONFIG_PATH] == stack.lb.keepalived_configs[index]
        assert f"unicast_src_ip {stack.lb.private_ips[index]}" in files[VRRP_CONFIG_PATH]
        assert f"snat to {stack.lb.private_ips[index]}" in files[f"{LIBEXEC}/lvs-nat-setup"]
        assert files[f"{LIBEXEC}/lb-pool"] == program_text("lb-pool")
        commands = yaml.safe_load(director["user_data"])["runcmd"]
        assert commands[-1] == "systemctl enable --now harbor-vrrp.service harbor-lvs.service harbor-lb-pool.timer"


def test_keepalived_accepts_the_configs_extracted_from_user_data(built, tmp_path):
    _, doc = built
    for index, director in enumerate(directors(doc)):
        result = check_installed_config(written_files(director["user_data"]), tmp_path / str(index))
        assert result.returncode == 0, f"director {index}:\n{result.stderr}"


def test_user_data_passes_cloud_init_schema_and_shellcheck(built, tmp_path):
    cloud_init = require_tool("cloud-init")
    shellcheck = require_tool("shellcheck")
    _, doc = built
    for index, director in enumerate(directors(doc)):
        assert "${" not in director["user_data"], "the directors' user-data is known at synth time"
        path = tmp_path / f"user-data-{index}"
        path.write_text(director["user_data"])
        result = subprocess.run([cloud_init, "schema", "--config-file", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        for name, content in written_files(director["user_data"]).items():
            if content.startswith("#!/bin/"):
                script = tmp_path / f"{index}-{name.rsplit('/', 1)[-1]}"
                script.write_text(content)
                checked = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
                assert checked.returncode == 0, f"{name}:\n{checked.stdout}"


def test_the_targets_admit_the_directors(built):
    stack, _ = built
    assert stack.fleet.allowed == [(stack.lb, [443, 80])]


def test_the_pool_is_the_targets_addresses(built):
    _, doc = built
    (parameter,) = resources(doc, "aws_ssm_parameter").values()
    assert all(ip in parameter["value"] for ip in HARBOR_IPS)


def static_ips_stand_in(addresses):
    """Stands in for ``StaticIps``: the directors' placed addresses and the VIP's name."""
    return SimpleNamespace(lb_addresses=addresses, vip_name="harbor")


TWO_ZONES = [PlacedAddress("subnet-a", "us-east-1a", "10.40.0.10"), PlacedAddress("subnet-b", "us-east-1b", "10.40.64.10")]


@pytest.mark.parametrize("static_ips, servers, prop", [
    (static_ips_stand_in([]), HARBOR_IPS, "static_ips"),
    (static_ips_stand_in([PlacedAddress("subnet-a", "us-east-1a", "10.40.0.10"),
                          PlacedAddress("subnet-b", "us-east-1a", "10.40.0.11")]), HARBOR_IPS, "static_ips"),
    (static_ips_stand_in(TWO_ZONES), (), "targets"),
    (static_ips_stand_in(TWO_ZONES), ("10.0.0.1", "10.0.0.1"), "targets"),
])
def test_bad_props_are_rejected(static_ips, servers, prop):
    with pytest.raises(ValueError, match=rf"^{prop} = .*: allowed is "):
        LoadBalancerPairProps(network=None, static_ips=static_ips, targets=FleetStandIn(servers))


def test_terraform_validate_accepts_the_stack(built, tmp_path):
    terraform = require_tool("terraform")
    _, doc = built
    (tmp_path / "cdk.tf.json").write_text(json.dumps(doc))
    env = terraform_env()
    init = subprocess.run([terraform, "init", "-backend=false", "-input=false", "-no-color"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stdout[-2000:] + init.stderr[-2000:]
    validate = subprocess.run([terraform, "validate", "-json", "-no-color"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
    result = json.loads(validate.stdout)
    assert result["valid"] and result["warning_count"] == 0, json.dumps(result["diagnostics"], indent=2)


def test_lb_pair_snapshot(built, snapshot):
    _, doc = built
    assert doc == snapshot
