"""The network every harbor-ha stack runs in: a new VPC spread over two or more AZs, or an existing one.

A new VPC gets one public and one private subnet per AZ, an internet gateway, NAT for the private subnets
(one gateway per AZ so an AZ outage does not cut the others off, or a single cheaper one) and an S3
gateway endpoint so image layers reach the registry bucket without crossing NAT. Its default security group
is emptied: nothing of harbor-ha uses it, and a resource placed in it by mistake then reaches nothing. An
existing VPC is only looked up: nothing is created in it here.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from harbor_ha.aws import (
    Construct, DataAwsRegion, DataAwsSubnet, DataAwsVpc, DefaultSecurityGroup, Eip, FlowLog, InternetGateway, NatGateway,
    Postcondition, Route, RouteTable, RouteTableAssociation, Subnet, TerraformResourceLifecycle, Vpc, VpcEndpoint,
)
from harbor_ha import rules
from harbor_ha.constructs.data_tier import require, require_rule, require_whole
from harbor_ha.constructs.log_bucket import LogBucket, LogBucketProps



@dataclass(frozen=True)
class HarborNetworkProps:
    """Where the network lives. Give ``availability_zones`` for a new VPC, or ``vpc_id`` with subnet ids."""

    name: str
    """Prefix of the Name tags."""
    availability_zones: tuple[str, ...] = ()
    """New VPC: the AZs to spread over, 2 to 6. Default none (required unless ``vpc_id`` is given)."""
    vpc_cidr: str = "10.40.0.0/16"
    """New VPC: its IPv4 network, /16 to /22. Default ``10.40.0.0/16``. It is split into the fewest equal
    blocks (a power of two) that give each AZ two: the first blocks are the public subnets, the next the
    private ones."""
    single_nat_gateway: bool = False
    """New VPC: one NAT gateway for all AZs instead of one per AZ (cheaper, but an outage of its AZ cuts
    every private subnet off the internet). Default False."""
    vpc_id: str = ""
    """Use this existing VPC instead of creating one: its id, or a reference (``vpc.id``) to a VPC made in the same
    stack. Default: create a new VPC."""
    public_subnet_ids: tuple[str, ...] = ()
    """With ``vpc_id``: public subnets, at least 2, in distinct AZs; entry i in the AZ of
    ``private_subnet_ids[i]``. Default none."""
    private_subnet_ids: tuple[str, ...] = ()
    """With ``vpc_id``: private subnets, at least 2, in distinct AZs. Default none."""
    log_retention_days: int = 365
    """Days the region's log bucket (VPC flow logs of a new VPC, S3 access logs) keeps a log, 1-3650.
    Default 365."""
    force_destroy_logs: bool = False
    """Let ``terraform destroy`` delete the log bucket while it holds logs. Default False."""

    def __post_init__(self) -> None:
        require_whole(self, "log_retention_days", 1, 3650)
        if self.vpc_id:
            require_rule(self, "vpc_id", rules.VPC_ID_OR_REFERENCE)
            for key in ("public_subnet_ids", "private_subnet_ids"):
                require_rule(self, key, rules.SUBNET_IDS_OR_REFERENCES)
            require(rules.SUBNET_PAIRS.ok((self.public_subnet_ids, self.private_subnet_ids)), "public_subnet_ids",
                    self.public_subnet_ids, rules.SUBNET_PAIRS.allowed)
            return
        require(not self.public_subnet_ids and not self.private_subnet_ids, "vpc_id", self.vpc_id,
                "the id of the VPC that holds the given subnets (subnet ids need vpc_id)")
        require_rule(self, "availability_zones", rules.ZONES)
        require_rule(self, "vpc_cidr", rules.VPC_CIDR)


class HarborNetwork(Construct):
    """A VPC and its subnets. Index i of every list attribute is the same AZ i.

    Attributes: ``vpc_id``, ``vpc_cidr``, ``availability_zones``, ``public_subnet_ids``,
    ``private_subnet_ids``, ``public_subnet_cidrs``, ``private_subnet_cidrs``, ``log_bucket`` (the region's
    ``LogBucket``: flow logs of a new VPC, and the S3 access logs of the buckets built on this network)."""

    def __init__(self, scope: Construct, id_: str, *, props: HarborNetworkProps) -> None:
        super().__init__(scope, id_)
        self.props = props
        self.log_bucket = LogBucket(self, "logs", props=LogBucketProps(
            name=props.name, retention_days=props.log_retention_days, force_destroy=props.force_destroy_logs))
        if props.vpc_id:
            self._look_up(props)
        else:
            self._create(props)

    def _look_up(self, props: HarborNetworkProps) -> None:
        self.vpc_id = props.vpc_id
        self.vpc_cidr = DataAwsVpc(self, "vpc", id=props.vpc_id).cidr_block
        private = [DataAwsSubnet(self, f"private-{i}", id=subnet_id, vpc_id=props.vpc_id)
                   for i, subnet_id in enumerate(props.private_subnet_ids)]
        # Index i of every list is one AZ: the plan stops if a public subnet is not in its private peer's AZ.
        public = [DataAwsSubnet(self, f"public-{i}", id=subnet_id, vpc_id=props.vpc_id,
                                lifecycle=TerraformResourceLifecycle(postcondition=[Postcondition(
                                    condition=f"${{self.availability_zone == {peer.availability_zone}}}",
                                    error_message=f"public_subnet_ids[{i}] ({subnet_id}) must be in the AZ of "
                                                  f"private_subnet_ids[{i}] ({props.private_subnet_ids[i]})")]))
                  for i, (subnet_id, peer) in enumerate(zip(props.public_subnet_ids, private))]
        self.availability_zones = [subnet.availability_zone for subnet in private]
        self.public_subnet_ids = list(props.public_subnet_ids)
        self.private_subnet_ids = list(props.private_subnet_ids)
        self.public_subnet_cidrs = [subnet.cidr_block for subnet in public]
        self.private_subnet_cidrs = [subnet.cidr_block for subnet in private]

    def _create(self, props: HarborNetworkProps) -> None:
        zones = list(props.availability_zones)
        public_cidrs, private_cidrs = split_cidr(props.vpc_cidr, len(zones))
        vpc = Vpc(self, "vpc", cidr_block=props.vpc_cidr, enable_dns_support=True, enable_dns_hostnames=True,
                  tags={"Name": props.name})
        # Flow logs of every interface, accepted and rejected, to the region's log bucket.
        FlowLog(self, "flow-log", vpc_id=vpc.id, traffic_type="ALL", log_destination_type="s3",
                log_destination=self.log_bucket.bucket_arn, max_aggregation_interval=600,
                depends_on=[self.log_bucket.policy], tags={"Name": props.name})
        # No ingress or egress rules given: Terraform removes the default ones (allow all within the group, all out).
        DefaultSecurityGroup(self, "default-security-group", vpc_id=vpc.id, tags={"Name": f"{props.name}-default"})
        gateway = InternetGateway(self, "internet-gateway", vpc_id=vpc.id, tags={"Name": props.name})
        public_table = RouteTable(self, "public-routes", vpc_id=vpc.id, tags={"Name": f"{props.name}-public"})
        Route(self, "public-default", route_table_id=public_table.id, destination_cidr_block="0.0.0.0/0",
              gateway_id=gateway.id)
        public, private, private_tables, nats = [], [], [], []
        for i, zone in enumerate(zones):
            public.append(self._subnet(vpc, "public", i, zone, public_cidrs[i], public_table))
            if i == 0 or not props.single_nat_gateway:
                address = Eip(self, f"nat-address-{i}", domain="vpc", tags={"Name": f"{props.name}-nat-{zone}"})
                nats.append(NatGateway(self, f"nat-{i}", allocation_id=address.allocation_id,
                                       subnet_id=public[i].id, depends_on=[gateway],
                                       tags={"Name": f"{props.name}-{zone}"}))
            table = RouteTable(self, f"private-routes-{i}", vpc_id=vpc.id,
                               tags={"Name": f"{props.name}-private-{zone}"})
            Route(self, f"private-default-{i}", route_table_id=table.id, destination_cidr_block="0.0.0.0/0",
                  nat_gateway_id=nats[-1].id)
            private_tables.append(table)
            private.append(self._subnet(vpc, "private", i, zone, private_cidrs[i], table))
        region = DataAwsRegion(self, "region")
        VpcEndpoint(self, "s3-endpoint", vpc_id=vpc.id, vpc_endpoint_type="Gateway",
                    service_name=f"com.amazonaws.{region.name}.s3",
                    route_table_ids=[public_table.id] + [table.id for table in private_tables],
                    tags={"Name": f"{props.name}-s3"})
        self.vpc_id = vpc.id
        self.vpc_cidr = props.vpc_cidr
        self.availability_zones = zones
        self.public_subnet_ids = [subnet.id for subnet in public]
        self.private_subnet_ids = [subnet.id for subnet in private]
        self.public_subnet_cidrs = public_cidrs
        self.private_subnet_cidrs = private_cidrs

    def _subnet(self, vpc: Vpc, kind: str, index: int, zone: str, cidr: str, table: RouteTable) -> Subnet:
        # No automatic public IPs: the VMs that must be reachable get Elastic IPs explicitly.
        subnet = Subnet(self, f"{kind}-{index}", vpc_id=vpc.id, availability_zone=zone, cidr_block=cidr,
                        map_public_ip_on_launch=False, tags={"Name": f"{self.props.name}-{kind}-{zone}"})
        RouteTableAssociation(self, f"{kind}-{index}-routes", subnet_id=subnet.id, route_table_id=table.id)
        return subnet


def split_cidr(vpc_cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Equal subnets of ``vpc_cidr``, the smallest power of two that holds 2 per AZ: (public, private)."""
    blocks = list(ipaddress.IPv4Network(vpc_cidr).subnets(prefixlen_diff=math.ceil(math.log2(2 * zones))))
    return [str(b) for b in blocks[:zones]], [str(b) for b in blocks[zones:2 * zones]]
