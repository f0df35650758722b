"""HarborNetwork: a new VPC over the AZs (NAT per AZ or one), or an existing VPC that is only looked up."""

from __future__ import annotations

import pytest

from harbor_ha.constructs.network import HarborNetwork, HarborNetworkProps, split_cidr
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks.base import HarborHaStack
from harbor_ha.stacks.props import network_props

from conftest import resources
from data_tier_helpers import assert_rejected

EXISTING = dict(vpc_id="vpc-0123456789abcdef0",
                public_subnet_ids=("subnet-0000000000000000a", "subnet-0000000000000000b"),
                private_subnet_ids=("subnet-0000000000000001a", "subnet-0000000000000001b"))


def build(app, stack_id, settings, synth, **props):
    stack = HarborHaStack(app, stack_id, settings=settings)
    network = HarborNetwork(stack, "network", props=HarborNetworkProps(name="harbor", **props))
    return network, synth(stack)


def ref(kind: str, name: str, attribute: str = "id") -> str:
    return f"${{{kind}.{name}.{attribute}}}"


def by_name_tag(doc: dict, kind: str) -> dict:
    return {body["tags"]["Name"]: (name, body) for name, body in resources(doc, kind).items()}


def test_new_vpc_spans_the_zones_with_a_nat_gateway_per_zone(app, stack_id, settings, synth):
    zones = ("us-east-1a", "us-east-1b")
    network, doc = build(app, stack_id, settings, synth, availability_zones=zones, vpc_cidr="10.40.0.0/16")

    (vpc_name, vpc), = resources(doc, "aws_vpc").items()
    assert vpc["cidr_block"] == "10.40.0.0/16"
    assert vpc["enable_dns_support"] is True and vpc["enable_dns_hostnames"] is True

    subnets = by_name_tag(doc, "aws_subnet")
    assert sorted(subnets) == ["harbor-private-us-east-1a", "harbor-private-us-east-1b",
                               "harbor-public-us-east-1a", "harbor-public-us-east-1b"]
    for kind, cidrs in (("public", ["10.40.0.0/18", "10.40.64.0/18"]), ("private", ["10.40.128.0/18", "10.40.192.0/18"])):
        for zone, cidr in zip(zones, cidrs):
            name, subnet = subnets[f"harbor-{kind}-{zone}"]
            assert (subnet["availability_zone"], subnet["cidr_block"]) == (zone, cidr), name
            assert subnet["map_public_ip_on_launch"] is False, f"{name} must not hand out public IPs"
            assert subnet["vpc_id"] == ref("aws_vpc", vpc_name)

    assert len(resources(doc, "aws_internet_gateway")) == 1
    nats = by_name_tag(doc, "aws_nat_gateway")
    assert sorted(nats) == ["harbor-us-east-1a", "harbor-us-east-1b"], "one NAT gateway per AZ by default"
    for zone in zones:
        nat_name, nat = nats[f"harbor-{zone}"]
        assert nat["subnet_id"] == ref("aws_subnet", subnets[f"harbor-public-{zone}"][0])
        table_name, _ = by_name_tag(doc, "aws_route_table")[f"harbor-private-{zone}"]
        routes = [r for r in resources(doc, "aws_route").values() if r["route_table_id"] == ref("aws_route_table", table_name)]
        assert routes == [{"route_table_id": ref("aws_route_table", table_name), "destination_cidr_block": "0.0.0.0/0",
                           "nat_gateway_id": ref("aws_nat_gateway", nat_name)}], f"private subnets of {zone} leave via its NAT"
    associations = resources(doc, "aws_route_table_association").values()
    assert {a["subnet_id"] for a in associations} == {ref("aws_subnet", name) for name, _ in subnets.values()}

    (default_group,) = resources(doc, "aws_default_security_group").values()
    assert default_group["vpc_id"] == ref("aws_vpc", vpc_name)
    assert "ingress" not in default_group and "egress" not in default_group, "the default group admits nothing"

    (endpoint,) = resources(doc, "aws_vpc_endpoint").values()
    assert endpoint["vpc_endpoint_type"] == "Gateway"
    assert endpoint["service_name"].startswith("com.amazonaws.${data.aws_region.") and endpoint["service_name"].endswith(".s3")
    assert len(endpoint["route_table_ids"]) == 3, "the S3 endpoint serves the public and both private route tables"

    assert network.vpc_cidr == "10.40.0.0/16"
    assert network.availability_zones == list(zones)
    assert network.public_subnet_cidrs == ["10.40.0.0/18", "10.40.64.0/18"]
    assert network.private_subnet_cidrs == ["10.40.128.0/18", "10.40.192.0/18"]
    assert len(network.public_subnet_ids) == len(network.private_subnet_ids) == 2


def test_single_nat_gateway_serves_every_zone(app, stack_id, settings, synth):
    _, doc = build(app, stack_id, settings, synth, availability_zones=("us-east-1a", "us-east-1b", "us-east-1c"),
                   vpc_cidr="10.1.0.0/22", single_nat_gateway=True)
    (nat_name,) = resources(doc, "aws_nat_gateway")
    assert len(resources(doc, "aws_eip")) == 1
    private_routes = [r for r in resources(doc, "aws_route").values() if "nat_gateway_id" in r]
    assert [r["nat_gateway_id"] for r in private_routes] == [ref("aws_nat_gateway", nat_name)] * 3
    # 6 subnets round up to 8 blocks of a /22: /25 each.
    assert sorted(s["cidr_block"] for s in resources(doc, "aws_subnet").values()) == [
        "10.1.0.0/25", "10.1.0.128/25", "10.1.1.0/25", "10.1.1.128/25", "10.1.2.0/25", "10.1.2.128/25"]


def test_existing_vpc_is_looked_up_and_nothing_is_created(app, stack_id, settings, synth):
    network, doc = build(app, stack_id, settings, synth, **EXISTING)
    created = {kind for kind in doc.get("resource", {}) if not kind.startswith("aws_s3_bucket")}
    assert created == set(), "an existing VPC must not get any resource (the region's log bucket is in no VPC)"
    subnets = doc["data"]["aws_subnet"]
    assert sorted(s["id"] for s in subnets.values()) == sorted(EXISTING["public_subnet_ids"] + EXISTING["private_subnet_ids"])
    assert all(s["vpc_id"] == EXISTING["vpc_id"] for s in subnets.values())
    public = [s for s in subnets.values() if s["id"] in EXISTING["public_subnet_ids"]]
    for subnet in public:
        (check,) = subnet["lifecycle"]["postcondition"]
        assert check["condition"].startswith("${self.availability_zone == data.aws_subnet.network_private-")
    assert network.vpc_id == EXISTING["vpc_id"]
    assert network.public_subnet_ids == list(EXISTING["public_subnet_ids"])
    assert network.private_subnet_ids == list(EXISTING["private_subnet_ids"])
    assert all(zone.startswith("${TfToken[") for zone in network.availability_zones), "AZs come from the data source"
    assert network.vpc_cidr.startswith("${TfToken[")


def test_network_props_of_the_settings():
    new = network_props(HarborHaSettings(name="reg", vpc_cidr="10.9.0.0/20",
                                                            availability_zones=("us-east-1c", "us-east-1d")))
    assert new == HarborNetworkProps(name="reg", availability_zones=("us-east-1c", "us-east-1d"), vpc_cidr="10.9.0.0/20",
                                     force_destroy_logs=True)
    assert network_props(HarborHaSettings()).availability_zones == ("us-east-1a", "us-east-1b")
    existing = network_props(HarborHaSettings(**EXISTING))
    assert existing == HarborNetworkProps(name="harbor", force_destroy_logs=True, **EXISTING)


def test_split_cidr_keeps_one_public_and_one_private_block_per_zone():
    assert split_cidr("10.40.0.0/16", 2) == (["10.40.0.0/18", "10.40.64.0/18"], ["10.40.128.0/18", "10.40.192.0/18"])
    public, private = split_cidr("10.0.0.0/16", 3)
    assert public == ["10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19"] and private[0] == "10.0.96.0/19"


@pytest.mark.parametrize(("props", "prop", "allowed"), [
    (dict(availability_zones=("us-east-1a",)), "availability_zones", "2 to 6 distinct AZs"),
    (dict(availability_zones=("us-east-1a", "us-east-1a")), "availability_zones", "2 to 6 distinct AZs"),
    (dict(availability_zones=("us-east-1a", "us-east-1b"), vpc_cidr="10.0.0.0/24"), "vpc_cidr", "/16 to /22"),
    (dict(availability_zones=("us-east-1a", "us-east-1b"), vpc_cidr="10.0.0.1/16"), "vpc_cidr", "/16 to /22"),
    (dict(availability_zones=("us-east-1a", "us-east-1b"), private_subnet_ids=EXISTING["private_subnet_ids"]),
     "vpc_id", "subnet ids need vpc_id"),
    ({**EXISTING, "vpc_id": "vpc-1"}, "vpc_id", "vpc-0123456789abcdef0, or a reference such as vpc.id"),
    ({**EXISTING, "private_subnet_ids": ("${TfToken[TOKEN.1]}", "subnet-1")}, "private_subnet_ids",
     "or references such as subnet.id"),
    ({**EXISTING, "private_subnet_ids": ("subnet-0000000000000001a",)}, "private_subnet_ids", "at least 2"),
    ({**EXISTING, "public_subnet_ids": EXISTING["public_subnet_ids"] + ("subnet-0000000000000000c",)},
     "public_subnet_ids", "one public subnet per private subnet"),
])
def test_bad_props_name_the_prop_and_what_is_allowed(props, prop, allowed):
    assert_rejected(lambda: HarborNetworkProps(name="harbor", **props), prop, allowed)


def test_network_construct_snapshot(app, stack_id, settings, synth, snapshot):
    _, doc = build(app, stack_id, settings, synth, availability_zones=("us-east-1a", "us-east-1b"))
    assert doc == snapshot
