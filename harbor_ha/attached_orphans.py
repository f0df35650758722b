"""Orphans without a name of their own: security group rules, routes and route table associations that a
cut-short apply made but never saved. Creating one again fails (``InvalidPermission.Duplicate``,
``RouteAlreadyExists``, ``Resource.AlreadyAssociated``), and neither tags nor names tie one to the
configuration, whose values are references (``${aws_security_group.x.id}``).

They are found through their parents in the state (the stack's security groups and route tables, once
``harbor_ha.recovery`` has imported the named orphans) and matched with what Terraform's own plan would create:
the plan has resolved every reference to a parent the state holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from harbor_ha.plan_summary import saved_plan
from harbor_ha.verify import Live, resource_region, state_resources

RULE_KINDS = ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule")
ATTACHED_KINDS = (*RULE_KINDS, "aws_route", "aws_route_table_association")
PARENT_KINDS = ("aws_security_group", "aws_default_security_group", "aws_route_table", "aws_default_route_table")
# Protocol names Terraform takes, as EC2 lists them.
PROTOCOL_NUMBERS = {"tcp": "6", "udp": "17", "icmp": "1", "all": "-1"}


@dataclass(frozen=True)
class Attached:
    """A rule, route or association in the target."""

    kind: str
    import_id: str
    """What ``terraform import`` takes: ``sgr-...``, ``rtb-..._<destination>``, ``subnet-.../rtb-...``."""
    fields: tuple[tuple[str, object], ...]
    """The attributes it is matched on, named and valued as in Terraform's configuration."""


def _protocol(value) -> str:
    return PROTOCOL_NUMBERS.get(str(value).lower(), str(value))


def _port(value) -> int:
    return -1 if value is None else int(value)


def _comparable(kind: str, values: dict) -> tuple[tuple[str, object], ...]:
    """The attributes of a rule, route or association that identify it, in one form for AWS's and Terraform's."""
    if kind in RULE_KINDS:
        keys = ("security_group_id", "cidr_ipv4", "cidr_ipv6", "prefix_list_id", "referenced_security_group_id")
        return tuple((k, values.get(k) or None) for k in keys) + (
            ("ip_protocol", _protocol(values.get("ip_protocol"))),
            ("ports", (-1, -1) if _protocol(values.get("ip_protocol")) == "-1"
             else (_port(values.get("from_port")), _port(values.get("to_port")))))
    keys = {"aws_route": ("route_table_id", "destination_cidr_block", "destination_ipv6_cidr_block",
                          "destination_prefix_list_id"),
            "aws_route_table_association": ("route_table_id", "subnet_id", "gateway_id")}[kind]
    return tuple((k, values.get(k) or None) for k in keys)


def _parents(state: dict, default_region: str) -> dict[str, list[str]]:
    """Region -> ids of the state's security groups and route tables."""
    found: dict[str, list[str]] = {}
    for resource in state_resources(state):
        if resource["type"] in PARENT_KINDS:
            values = resource["values"]
            found.setdefault(resource_region(values, default_region), []).append(values["id"])
    return found


def live_attached(live: Live, state: dict) -> list[Attached]:
    """The rules, routes and subnet associations the target holds in the state's security groups and route
    tables (not the routes and associations AWS makes with a table)."""
    found = []
    for region, ids in _parents(state, live.target.region).items():
        ec2 = live("ec2", region)
        groups, tables = [i for i in ids if i.startswith("sg-")], [i for i in ids if i.startswith("rtb-")]
        if groups:
            for page in ec2.get_paginator("describe_security_group_rules").paginate(
                    Filters=[{"Name": "group-id", "Values": groups}]):
                for rule in page["SecurityGroupRules"]:
                    kind = "aws_vpc_security_group_egress_rule" if rule["IsEgress"] else \
                        "aws_vpc_security_group_ingress_rule"
                    values = {"security_group_id": rule["GroupId"], "cidr_ipv4": rule.get("CidrIpv4"),
                              "cidr_ipv6": rule.get("CidrIpv6"), "prefix_list_id": rule.get("PrefixListId"),
                              "referenced_security_group_id": (rule.get("ReferencedGroupInfo") or {}).get("GroupId"),
                              "ip_protocol": rule["IpProtocol"], "from_port": rule.get("FromPort"),
                              "to_port": rule.get("ToPort")}
                    found.append(Attached(kind, rule["SecurityGroupRuleId"], _comparable(kind, values)))
        if tables:
            for table in ec2.describe_route_tables(RouteTableIds=tables)["RouteTables"]:
                rtb = table["RouteTableId"]
                for route in table.get("Routes", []):
                    # A gateway endpoint's routes belong to the endpoint (its route_table_ids), not to aws_route.
                    if route.get("Origin") != "CreateRoute" or str(route.get("GatewayId", "")).startswith("vpce-"):
                        continue
                    values = {"route_table_id": rtb, "destination_cidr_block": route.get("DestinationCidrBlock"),
                              "destination_ipv6_cidr_block": route.get("DestinationIpv6CidrBlock"),
                              "destination_prefix_list_id": route.get("DestinationPrefixListId")}
                    destination = next(v for k, v in values.items() if k != "route_table_id" and v)
                    found.append(Attached("aws_route", f"{rtb}_{destination}", _comparable("aws_route", values)))
                for association in table.get("Associations", []):
                    if association.get("Main") or not association.get("SubnetId"):
                        continue
                    values = {"route_table_id": rtb, "subnet_id": association["SubnetId"]}
                    found.append(Attached("aws_route_table_association", f"{association['SubnetId']}/{rtb}",
                                          _comparable("aws_route_table_association", values)))
    return found


def unsaved_attached(live: Live, state: dict) -> list[Attached]:
    """What ``live_attached`` finds that the state does not hold."""
    held = {(r["type"], _comparable(r["type"], r["values"])) for r in state_resources(state)
            if r["type"] in ATTACHED_KINDS}
    return [a for a in live_attached(live, state) if (a.kind, a.fields) not in held]


def planned_matches(run, unsaved: list[Attached]) -> list[dict]:
    """Import blocks (``{"to": address, "id": import id}``) for each of ``unsaved`` that exactly one resource
    Terraform plans to create would make; one plan of ``run``."""
    wanted = {(a.kind, a.fields): a for a in unsaved}
    kinds = {a.kind for a in unsaved}
    creates: dict[tuple, list[str]] = {}
    for change in (saved_plan(run) or {}).get("resource_changes", []):
        if change["type"] in kinds and change["change"]["actions"] == ["create"]:
            key = (change["type"], _comparable(change["type"], change["change"].get("after") or {}))
            creates.setdefault(key, []).append(change["address"])
    return [{"to": addresses[0], "id": wanted[key].import_id}
            for key, addresses in creates.items() if key in wanted and len(addresses) == 1]
