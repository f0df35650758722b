"""Rules, routes and route table associations a cut-short apply left unsaved, against moto: found through the
groups and tables of a recorded state, told apart from what the state holds, and matched with the creates of a
recorded plan in Terraform's spelling (protocol names, no ports for protocols without them)."""

from __future__ import annotations

import harbor_ha.attached_orphans as attached_orphans
from harbor_ha.attached_orphans import planned_matches, unsaved_attached

from conftest import MOCK_REGION as REGION


def _state(*resources: tuple[str, str, dict]) -> dict:
    return {"values": {"root_module": {"resources": [
        {"mode": "managed", "type": kind, "name": name, "address": f"{kind}.{name}", "values": values}
        for kind, name, values in resources]}}}


def _plan(*creates: tuple[str, dict]) -> dict:
    return {"resource_changes": [{"address": address, "type": address.split(".")[0],
                                  "change": {"actions": ["create"], "after": after}} for address, after in creates]}


def test_unsaved_rules_routes_and_associations_are_found_and_matched_with_the_plan(mocked_aws, monkeypatch):
    ec2 = mocked_aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="hosts", Description="hosts", VpcId=vpc)["GroupId"]
    peer = ec2.create_security_group(GroupName="lb", Description="lb", VpcId=vpc)["GroupId"]
    for rule in ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])[
            "SecurityGroupRules"]:  # AWS's default egress rule, which Terraform removes from a group it makes
        ec2.revoke_security_group_egress(GroupId=group, SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])
    https = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    vrrp = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "112", "FromPort": -1, "ToPort": -1, "UserIdGroupPairs": [{"GroupId": peer}]}])
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    arn = f"arn:aws:ec2:{REGION}:123456789012:"
    state = _state(("aws_security_group", "hosts", {"id": group, "arn": f"{arn}security-group/{group}"}),
                   ("aws_route_table", "private", {"id": table, "arn": f"{arn}route-table/{table}"}),
                   ("aws_vpc_security_group_ingress_rule", "https", {
                       "id": https["SecurityGroupRules"][0]["SecurityGroupRuleId"], "security_group_id": group,
                       "ip_protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_ipv4": "10.0.0.0/8"}))

    unsaved = unsaved_attached(mocked_aws, state)
    assert sorted(a.kind for a in unsaved) == ["aws_route", "aws_route_table_association",
                                               "aws_vpc_security_group_ingress_rule"]

    plan = _plan(("aws_vpc_security_group_ingress_rule.vrrp", {
                     "security_group_id": group, "ip_protocol": "112", "from_port": None, "to_port": None,
                     "referenced_security_group_id": peer}),
                 ("aws_vpc_security_group_ingress_rule.other", {
                     "security_group_id": group, "ip_protocol": "tcp", "from_port": 80, "to_port": 80,
                     "referenced_security_group_id": peer}),
                 ("aws_route.default", {"route_table_id": table, "destination_cidr_block": "0.0.0.0/0",
                                        "gateway_id": gateway}),
                 ("aws_route_table_association.private", {"route_table_id": table, "subnet_id": subnet}))
    monkeypatch.setattr(attached_orphans, "saved_plan", lambda run: plan)
    assert sorted((block["to"], block["id"]) for block in planned_matches(None, unsaved)) == [
        ("aws_route.default", f"{table}_0.0.0.0/0"),
        ("aws_route_table_association.private", f"{subnet}/{table}"),
        ("aws_vpc_security_group_ingress_rule.vrrp", vrrp["SecurityGroupRules"][0]["SecurityGroupRuleId"])]


def test_a_stack_whose_state_holds_everything_has_nothing_unsaved(mocked_aws):
    ec2 = mocked_aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    state = _state(("aws_route_table", "private", {"id": table, "arn": f"arn:aws:ec2:{REGION}:1:route-table/{table}"}),
                   ("aws_route", "default", {"id": "r-1", "route_table_id": table,
                                             "destination_cidr_block": "0.0.0.0/0"}))
    assert unsaved_attached(mocked_aws, state) == []
