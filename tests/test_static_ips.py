"""StaticIps: the VIP as an Elastic IP that Terraform leaves to keepalived after deploy, fixed private
addresses round-robin over the AZs, and a grant that moves this VIP only."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from harbor_ha.aws import IamRole
from harbor_ha.constructs.network import HarborNetwork, HarborNetworkProps
from harbor_ha.constructs.static_ips import PlacedAddress, StaticIps, StaticIpsProps
from harbor_ha.stacks.base import HarborHaStack

from conftest import resources

ZONES = ("us-east-1a", "us-east-1b")
ASSUME_EC2 = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",'
              '"Principal":{"Service":"ec2.amazonaws.com"}}]}')


def build(app, stack_id, settings, synth, *, network_props=None, grant=True, **props):
    stack = HarborHaStack(app, stack_id, settings=settings)
    network = HarborNetwork(stack, "network", props=network_props or HarborNetworkProps(
        name="harbor", availability_zones=ZONES, vpc_cidr="10.40.0.0/16"))
    ips = StaticIps(stack, "static-ips", props=StaticIpsProps(network=network, name="harbor", **props))
    if grant:
        ips.grant_associate_vip(IamRole(stack, "lb-role", assume_role_policy=ASSUME_EC2))
    stack.output("harbor-ips", [a.private_ip for a in ips.harbor_addresses], "fixed Harbor addresses")
    stack.output("harbor-subnets", [a.subnet_id for a in ips.harbor_addresses], "their subnets")
    stack.output("lb-subnets", [a.subnet_id for a in ips.lb_addresses], "the LB subnets")
    return ips, synth(stack)


def subnet_ref(doc: dict, kind: str, zone: str) -> str:
    (name,) = [n for n, s in resources(doc, "aws_subnet").items() if s["tags"]["Name"] == f"harbor-{kind}-{zone}"]
    return f"${{aws_subnet.{name}.id}}"


def vip_eip(doc: dict) -> tuple[str, dict]:
    (found,) = [(n, e) for n, e in resources(doc, "aws_eip").items() if e["tags"].get("harbor-ha:vip")]
    return found


def test_servers_round_robin_over_the_zones_at_fixed_hosts(app, stack_id, settings, synth):
    ips, doc = build(app, stack_id, settings, synth, harbor_count=3, lb_count=2)
    a, b = (subnet_ref(doc, "private", zone) for zone in ZONES)
    # Private subnets are 10.40.128.0/18 (AZ a) and 10.40.192.0/18 (AZ b); hosts start at offset 10.
    assert [(x.availability_zone, x.private_ip) for x in ips.harbor_addresses] == [
        ("us-east-1a", "10.40.128.10"), ("us-east-1b", "10.40.192.10"), ("us-east-1a", "10.40.128.11")]
    assert doc["output"]["harbor-ips"]["value"] == ["10.40.128.10", "10.40.192.10", "10.40.128.11"]
    assert doc["output"]["harbor-subnets"]["value"] == [a, b, a]
    # Load balancers sit in the public subnets (10.40.0.0/18, 10.40.64.0/18), one per AZ.
    assert [(x.availability_zone, x.private_ip) for x in ips.lb_addresses] == [
        ("us-east-1a", "10.40.0.10"), ("us-east-1b", "10.40.64.10")]
    assert doc["output"]["lb-subnets"]["value"] == [subnet_ref(doc, "public", zone) for zone in ZONES]
    assert isinstance(ips.lb_addresses[0], PlacedAddress)


def test_no_lb_addresses_for_topologies_without_lb_vms(app, stack_id, settings, synth):
    ips, _ = build(app, stack_id, settings, synth, harbor_count=2, lb_count=0)
    assert ips.lb_addresses == [] and len(ips.harbor_addresses) == 2


def test_vip_holders_only_when_the_harbor_servers_hold_the_vip(app, stack_id, settings, synth):
    """active-standby: its two Harbor nodes are the VIP holders; no address is placed for servers behind an LB."""
    ips, _ = build(app, stack_id, settings, synth, harbor_count=0, lb_count=2)
    assert ips.harbor_addresses == [] and len(ips.lb_addresses) == 2
    assert ips.vip_name == "harbor" and ips.vip_tags == {"harbor-ha:vip": ips.vip_name}


def test_addresses_in_an_existing_vpc_are_computed_by_terraform(app, stack_id, settings, synth):
    existing = HarborNetworkProps(
        name="harbor", vpc_id="vpc-0123456789abcdef0",
        public_subnet_ids=("subnet-0000000000000000a", "subnet-0000000000000000b"),
        private_subnet_ids=("subnet-0000000000000001a", "subnet-0000000000000001b"))
    ips, doc = build(app, stack_id, settings, synth, network_props=existing, harbor_count=3)
    values = doc["output"]["harbor-ips"]["value"]
    assert [re.sub(r"data\.aws_subnet\.[^.]+_private-(\d)_\w+", r"private-\1", v) for v in values] == [
        "${cidrhost(private-0.cidr_block, 10)}", "${cidrhost(private-1.cidr_block, 10)}",
        "${cidrhost(private-0.cidr_block, 11)}"]
    assert ips.harbor_addresses[1].subnet_id == "subnet-0000000000000001b"


def test_vip_is_an_elastic_ip_whose_association_terraform_leaves_alone(app, stack_id, settings, synth):
    stack = HarborHaStack(app, stack_id, settings=settings)
    network = HarborNetwork(stack, "network", props=HarborNetworkProps(name="harbor", availability_zones=ZONES))
    ips = StaticIps(stack, "static-ips", props=StaticIpsProps(network=network, name="harbor"))
    ips.associate_initially("i-0123456789abcdef0")
    doc = synth(stack)
    _, eip = vip_eip(doc)
    assert eip["domain"] == "vpc"
    assert eip["tags"] == {"Name": "harbor-vip", "harbor-ha:vip": "harbor"}
    assert eip["instance"] == "i-0123456789abcdef0", "associated at deploy"
    # After a failover the address is on the other node: a plan must not move it back.
    assert set(eip["lifecycle"]["ignore_changes"]) >= {"instance", "network_interface"}
    assert "aws_eip_association" not in doc.get("resource", {}), \
        "a separate association would be recreated after every failover"
    assert ips.vip_tags == {"harbor-ha:vip": "harbor"}


def test_grant_moves_only_this_vip_onto_tagged_instances(app, stack_id, settings, synth):
    _, doc = build(app, stack_id, settings, synth)
    eip_name, _ = vip_eip(doc)
    (policy,) = resources(doc, "aws_iam_role_policy").values()
    document = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(.+)\.json\}", policy["policy"]).group(1)
    statements = doc["data"]["aws_iam_policy_document"][document]["statement"]
    arn = re.compile(r"^arn:\$\{data\.aws_partition\.[^}]+\}:ec2:\$\{data\.aws_region\.[^}]+\}:"
                     r"\$\{data\.aws_caller_identity\.[^}]+\.account_id\}:")
    address, holder, describe = statements
    assert sorted(address["actions"]) == ["ec2:AssociateAddress", "ec2:DisassociateAddress"]
    (resource,) = address["resources"]
    assert arn.match(resource) and resource.endswith(f":elastic-ip/${{aws_eip.{eip_name}.allocation_id}}")
    assert holder["actions"] == ["ec2:AssociateAddress"]
    (resource,) = holder["resources"]
    assert arn.match(resource) and resource.endswith(":instance/*")
    assert holder["condition"] == [{"test": "StringEquals", "variable": "aws:ResourceTag/harbor-ha:vip",
                                    "values": ["harbor"]}]
    assert describe == {"effect": "Allow", "actions": ["ec2:DescribeAddresses"], "resources": ["*"]}
    assert all(s["effect"] == "Allow" and "*" not in "".join(s["actions"]) for s in statements)


@pytest.mark.parametrize("props, prop", [
    (dict(harbor_count=-1), "harbor_count"),
    (dict(harbor_count=101), "harbor_count"),
    (dict(harbor_count=True), "harbor_count"),
    (dict(lb_count=1), "lb_count"),
    (dict(name=""), "name"),
])
def test_bad_props_are_rejected(props, prop):
    with pytest.raises(ValueError, match=rf"^{prop} = .*: allowed is "):
        StaticIpsProps(network=None, **{"name": "harbor", **props})


def test_a_subnet_too_small_for_the_servers_is_rejected(app, stack_id, settings):
    tiny = SimpleNamespace(availability_zones=list(ZONES), public_subnet_ids=["p0", "p1"],
                           private_subnet_ids=["s0", "s1"], public_subnet_cidrs=["10.0.0.0/24", "10.0.1.0/24"],
                           private_subnet_cidrs=["10.0.2.0/28", "10.0.2.16/28"])
    stack = HarborHaStack(app, stack_id, settings=settings)
    with pytest.raises(ValueError, match=r"subnet 10\.0\.2\.0/28 has no host 15"):
        StaticIps(stack, "static-ips", props=StaticIpsProps(network=tiny, name="harbor", harbor_count=11))


def test_static_ips_snapshot(app, stack_id, settings, synth, snapshot):
    _, doc = build(app, stack_id, settings, synth, harbor_count=3)
    assert doc == snapshot
