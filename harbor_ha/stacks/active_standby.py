"""Solution 2, active-standby: the classical two-node pair for modest load.

    clients ──> VIP (Elastic IP) ──> Harbor node 0 (MASTER)      Harbor node 1 (BACKUP, standing by)
                                        └──── keepalived, unicast VRRP between the two ────┘
                                        │
                  shared data tier: RDS PostgreSQL Multi-AZ · ElastiCache Redis (failover) · S3 bucket

Behaviour:
* Who serves: only the node holding the VIP receives clients. The standby runs a complete Harbor on the same
  database, Redis, bucket and secrets (so it takes over warm, with sessions and tokens still valid), but no
  client reaches it while it does not hold the Elastic IP.
* Failover: each node checks its own ``/api/v2.0/health`` body every 2 s; after 3 failures (4-6 s) it
  enters FAULT, and a dead node stops sending VRRP adverts (noticed after 1.8 s). The peer then becomes
  MASTER and vip-notify re-associates the Elastic IP. ``harbor-ha drill active-standby`` measures each case;
  the README has the figures.
* No preemption: a recovered node stays BACKUP; the VIP moves back only when the current master fails.
* Harbor VMs hold the public VIP, so they live in the public subnets (with an automatic public address for
  the AWS API and package downloads while they are standby); the firewall admits clients on 443/80 only.
"""

from __future__ import annotations

from harbor_ha.aws import Construct
from harbor_ha.constructs.connections import allow_vrrp_within
from harbor_ha.constructs.harbor_fleet import HarborFleet
from harbor_ha.constructs.network import HarborNetwork
from harbor_ha.constructs.shared_data import SharedData
from harbor_ha.constructs.static_ips import StaticIps, StaticIpsProps
from harbor_ha.keepalived import VrrpPair, standby_cloud_config
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks.base import HarborHaStack
from harbor_ha.stacks.props import fleet_props, network_props, shared_data_props

class ActiveStandbyStack(HarborHaStack):
    stack_name = "active-standby"

    def __init__(self, scope: Construct, id_: str, *, settings: HarborHaSettings,
                 local_endpoint: str | None = None) -> None:
        super().__init__(scope, id_, settings=settings, local_endpoint=local_endpoint)
        s = self.settings
        network = HarborNetwork(self, "network", props=network_props(s))
        data = SharedData(self, "data", props=shared_data_props(s, network))
        # The two VIP holders' fixed addresses in the public subnets of two AZs (StaticIps places VIP holders
        # there; in active-active those are the load balancers).
        ips = StaticIps(self, "static-ips", props=StaticIpsProps(network=network, name=s.resource_prefix,
                                                                 harbor_count=0, lb_count=2))
        nodes = ips.lb_addresses
        pair = VrrpPair(name=ips.vip_name, addresses=(nodes[0].private_ip, nodes[1].private_ip))
        keepalived = [standby_cloud_config(pair, index) for index in (0, 1)]
        fleet = HarborFleet(self, "harbor", props=fleet_props(
            s, network=network, storage=data.storage, database=data.database, cache=data.cache,
            addresses=nodes, hostname=s.hostname, vip_name=ips.vip_name, extra_cloud_config_per_node=keepalived,
            instance_tags=ips.vip_tags, public_addresses=True))
        fleet.allow_from_cidrs(s.admin_cidrs)
        allow_vrrp_within(self, fleet.security_group_id)
        ips.grant_associate_vip(fleet.role)
        ips.associate_initially(fleet.instance_ids[0])

        self.output_vip_deployment(ips=ips, fleet=fleet, data=data, vip_holder="Harbor node")
