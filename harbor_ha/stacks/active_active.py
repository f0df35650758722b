"""Solution 1, active-active: scale out behind a virtual IP.

    clients ──> VIP (Elastic IP) ──> LB pair: keepalived (unicast VRRP) + LVS one-arm NAT, two AZs
                                        │  HTTPS/HTTP to every healthy Harbor server
                                        v
                    Harbor servers 1..n (fixed private addresses, spread over the AZs)
                                        │
                  shared data tier: RDS PostgreSQL Multi-AZ · ElastiCache Redis (failover) · S3 bucket
"""

from __future__ import annotations

from harbor_ha.aws import Construct
from harbor_ha.constructs.harbor_fleet import HarborFleet
from harbor_ha.constructs.lb_pair import LoadBalancerPair, LoadBalancerPairProps
from harbor_ha.constructs.network import HarborNetwork
from harbor_ha.constructs.shared_data import SharedData
from harbor_ha.constructs.static_ips import StaticIps, StaticIpsProps
from harbor_ha.rules import lb_name
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks.base import HarborHaStack
from harbor_ha.stacks.props import fleet_props, network_props, shared_data_props


class ActiveActiveStack(HarborHaStack):
    stack_name = "active-active"

    def __init__(self, scope: Construct, id_: str, *, settings: HarborHaSettings,
                 local_endpoint: str | None = None) -> None:
        super().__init__(scope, id_, settings=settings, local_endpoint=local_endpoint)
        s = self.settings
        network = HarborNetwork(self, "network", props=network_props(s))
        data = SharedData(self, "data", props=shared_data_props(s, network))
        ips = StaticIps(self, "static-ips", props=StaticIpsProps(
            network=network, name=s.resource_prefix, harbor_count=s.harbor_count, lb_count=2))
        fleet = HarborFleet(self, "harbor", props=fleet_props(
            s, network=network, storage=data.storage, database=data.database, cache=data.cache,
            addresses=ips.harbor_addresses, hostname=s.hostname or ips.vip_address))
        lb_pair = LoadBalancerPair(self, "lb", props=LoadBalancerPairProps(
            network=network, static_ips=ips, targets=fleet, name=lb_name(s.resource_prefix),
            instance_type=s.lb_instance_type, client_cidrs=s.admin_cidrs, ssh_cidrs=s.ssh_cidrs, ami_id=s.ami_id))

        self.output_vip_deployment(ips=ips, fleet=fleet, data=data, vip_holder="load balancer")
        self.output("lb_private_ips", lb_pair.private_ips, "Fixed private addresses of the load balancers")
        self.output("lb_instance_ids", lb_pair.instance_ids, "EC2 instances of the load balancers")
