"""The n+1 static addresses of the HA proposals, mapped to AWS.

* The VIP is an Elastic IP. It moves between the two nodes of a VRRP pair (load balancers, or the two
  Harbor VMs of active-standby): the vip-notify program re-associates it when a node becomes MASTER, finding
  it by its ``harbor-ha:vip`` tag.
* Every Harbor server and every load balancer gets a fixed private address, computed at synth time, so the
  LVS and keepalived configuration never changes when an instance is replaced. Harbor server i lives in the
  private subnet of AZ ``i % zones`` at host ``HOST_OFFSET + i // zones``; load balancer i in the public
  subnet of AZ i (it holds the public VIP) at host ``HOST_OFFSET``. Offset 10 keeps clear of the five
  addresses AWS reserves in every subnet (network, router, DNS, future use, broadcast) and leaves the low
  hosts to addresses given by hand.

Terraform and keepalived must not fight over the VIP: the initial association is the Elastic IP's own
``instance`` argument, made at deploy, with later changes to it ignored. A separate ``aws_eip_association``
would not do: once vip-notify moves the address, that association no longer exists, and Terraform would
create it again, moving the VIP back.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from harbor_ha.aws import (
    Construct, DataAwsCallerIdentity, DataAwsIamPolicyDocumentStatement, DataAwsIamPolicyDocumentStatementCondition,
    DataAwsPartition, DataAwsRegion, Eip, Fn, IamRole, TerraformResourceLifecycle, Token,
)
from harbor_ha.constructs.data_tier import grant, require, require_whole, statement
from harbor_ha.constructs.interfaces import Network
from harbor_ha.rules import VIP_TAG_KEY

HOST_OFFSET = 10
MAX_HARBOR_SERVERS = 100


@dataclass(frozen=True)
class PlacedAddress:
    """A fixed private address and where it lives."""

    subnet_id: str
    availability_zone: str
    private_ip: str


@dataclass(frozen=True)
class StaticIpsProps:
    """The network and how many addresses to place in it."""

    network: Network
    """A ``HarborNetwork`` (its AZs, subnet ids and subnet networks are used)."""
    name: str
    """Names the VIP: the value of its ``harbor-ha:vip`` tag, which vip-notify looks for."""
    harbor_count: int = 2
    """Harbor servers behind a load balancer that get a fixed private address, 0 to 100 (0: the Harbor servers
    hold the VIP themselves and take the public-subnet addresses). Default 2."""
    lb_count: int = 2
    """VIP holders that get a fixed public-subnet address: 2 (the LB pair of active-active, or the two Harbor
    nodes of active-standby) or 0. Default 2."""

    def __post_init__(self) -> None:
        require_whole(self, "harbor_count", 0, MAX_HARBOR_SERVERS)
        require(self.lb_count in (0, 2), "lb_count", self.lb_count, "0 or 2")
        require(bool(self.name), "name", self.name, "a non-empty name")


def host_address(cidr: str, host: int) -> str:
    """Host number ``host`` of ``cidr``: computed here when the CIDR is known at synth time (readable in the
    configuration, checkable by keepalived), else by Terraform's ``cidrhost`` (same result)."""
    if Token.is_unresolved(cidr):
        return Fn.cidrhost(cidr, host)
    network = ipaddress.IPv4Network(cidr)
    if host >= network.num_addresses - 1:
        raise ValueError(f"subnet {cidr} has no host {host}: give fewer servers or larger subnets")
    return str(network.network_address + host)


class StaticIps(Construct):
    """The VIP (an Elastic IP) and fixed private addresses for the Harbor servers and load balancers.

    Attributes: ``vip_name`` (the VIP's ``harbor-ha:vip`` tag), ``vip_allocation_id``, ``vip_address`` (public
    IP), ``vip_tags`` (put them on every instance that may hold the VIP), ``harbor_addresses`` and
    ``lb_addresses`` (lists of ``PlacedAddress``: the Harbor servers' and the VIP holders').
    """

    def __init__(self, scope: Construct, id_: str, *, props: StaticIpsProps) -> None:
        super().__init__(scope, id_)
        network = props.network
        zones = len(network.availability_zones)
        self.vip_name = props.name
        self.vip_tags = {VIP_TAG_KEY: props.name}
        self._eip = Eip(
            self, "vip", domain="vpc", tags={"Name": f"{props.name}-vip", **self.vip_tags},
            # The VRRP master owns the association after deploy (see the module notes).
            lifecycle=TerraformResourceLifecycle(
                ignore_changes=["instance", "network_interface", "associate_with_private_ip"]))
        self.vip_allocation_id: str = self._eip.allocation_id
        self.vip_address: str = self._eip.public_ip
        self.harbor_addresses = [
            PlacedAddress(subnet_id=network.private_subnet_ids[i % zones],
                          availability_zone=network.availability_zones[i % zones],
                          private_ip=host_address(network.private_subnet_cidrs[i % zones], HOST_OFFSET + i // zones))
            for i in range(props.harbor_count)]
        self.lb_addresses = [
            PlacedAddress(subnet_id=network.public_subnet_ids[i], availability_zone=network.availability_zones[i],
                          private_ip=host_address(network.public_subnet_cidrs[i], HOST_OFFSET))
            for i in range(props.lb_count)]
        self._arn_prefix = ""

    def associate_initially(self, instance_id: str) -> None:
        """Put the VIP on ``instance_id`` at deploy; afterwards keepalived's master moves it."""
        self._eip.instance = instance_id

    def grant_associate_vip(self, role: IamRole) -> None:
        """Let ``role`` move this VIP, and only this one, onto instances that carry ``vip_tags``."""
        if not self._arn_prefix:
            partition = DataAwsPartition(self, "partition").partition
            region = DataAwsRegion(self, "region").name
            account = DataAwsCallerIdentity(self, "account").account_id
            self._arn_prefix = f"arn:{partition}:ec2:{region}:{account}"
        tagged_holder = DataAwsIamPolicyDocumentStatement(
            effect="Allow", actions=["ec2:AssociateAddress"], resources=[f"{self._arn_prefix}:instance/*"],
            condition=[DataAwsIamPolicyDocumentStatementCondition(
                test="StringEquals", variable=f"aws:ResourceTag/{VIP_TAG_KEY}", values=[self.vip_name])])
        grant(self, role, "associate-vip", [
            statement(["ec2:AssociateAddress", "ec2:DisassociateAddress"],
                      [f"{self._arn_prefix}:elastic-ip/{self.vip_allocation_id}"]),
            tagged_holder,
            # DescribeAddresses supports no resource-level permissions.
            statement(["ec2:DescribeAddresses"], ["*"]),
        ])
