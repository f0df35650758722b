"""Wiring between constructs goes through security groups: a construct that accepts traffic offers
``allow_from(peer)``, and any construct with a ``security_group_id`` can be the peer (``interfaces.Connectable``)."""

from __future__ import annotations

from harbor_ha.aws import Construct, VpcSecurityGroupEgressRule, VpcSecurityGroupIngressRule


def allow_tcp(scope: Construct, id_: str, *, to_group_id: str, from_group_id: str, port: int,
              description: str) -> VpcSecurityGroupIngressRule:
    """One ingress rule: TCP ``port`` on ``to_group_id`` from members of ``from_group_id``."""
    return VpcSecurityGroupIngressRule(
        scope, id_, security_group_id=to_group_id, referenced_security_group_id=from_group_id,
        ip_protocol="tcp", from_port=port, to_port=port, description=description)


def allow_tcp_from_cidr(scope: Construct, id_: str, *, to_group_id: str, cidr: str, port: int,
                        description: str) -> VpcSecurityGroupIngressRule:
    """One ingress rule: TCP ``port`` on ``to_group_id`` from the network ``cidr``."""
    return VpcSecurityGroupIngressRule(
        scope, id_, security_group_id=to_group_id, cidr_ipv4=cidr, ip_protocol="tcp",
        from_port=port, to_port=port, description=description)


def allow_egress_tcp(scope: Construct, id_: str, *, from_group_id: str, cidr: str, port: int,
                     description: str) -> VpcSecurityGroupEgressRule:
    """One egress rule: TCP ``port`` from ``from_group_id`` to the network ``cidr``."""
    return VpcSecurityGroupEgressRule(
        scope, id_, security_group_id=from_group_id, cidr_ipv4=cidr, ip_protocol="tcp",
        from_port=port, to_port=port, description=description)


VRRP_PROTOCOL = "112"


def allow_vrrp_within(scope: Construct, group_id: str) -> None:
    """VRRP (IP protocol 112, unicast) in and out between members of ``group_id`` only: a keepalived pair."""
    VpcSecurityGroupIngressRule(scope, "vrrp-in", security_group_id=group_id, ip_protocol=VRRP_PROTOCOL,
                                referenced_security_group_id=group_id, description="VRRP from the peer")
    VpcSecurityGroupEgressRule(scope, "vrrp-out", security_group_id=group_id, ip_protocol=VRRP_PROTOCOL,
                               referenced_security_group_id=group_id, description="VRRP to the peer")
