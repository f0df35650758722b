"""Solution 1, active-active: scale out behind a virtual IP.

    clients ──> VIP (Elastic IP) ──> LB pair: keepalived (unicast VRRP) + LVS one-arm NAT, two AZs
                                        │  HTTPS/HTTP to every healthy Harbor server
                                        v
                    Harbor servers 1..n (fixed private addresses, spread over the AZs)
                                        │
                  shared data tier: RDS PostgreSQL Multi-AZ · ElastiCache Redis (failover) · S3 bucket
"""

from __future__ import annotations

from harbor_ha.aws import Construct, Fn
from harbor_ha.constructs.harbor_fleet import HarborFleet, HarborFleetProps
from harbor_ha.constructs.lb_pair import LoadBalancerPair, LoadBalancerPairProps
from harbor_ha.constructs.network import HarborNetwork, HarborNetworkProps
from harbor_ha.constructs.shared_data import SharedData, SharedDataProps
from harbor_ha.constructs.static_ips import StaticIps, StaticIpsProps
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks.base import HarborHaStack


class ActiveActiveStack(HarborHaStack):
    stack_name = "active-active"

    def __init__(self, scope: Construct, id_: str, *, settings: HarborHaSettings,
                 local_endpoint: str | None = None) -> None:
        super().__init__(scope, id_, settings=settings, local_endpoint=local_endpoint)
        s = settings
        network = HarborNetwork(self, "network", props=HarborNetworkProps.from_settings(s))
        data = SharedData(self, "data", props=SharedDataProps.from_settings(s, network))
        ips = StaticIps(self, "static-ips", props=StaticIpsProps(
            network=network, name=s.name, harbor_count=s.harbor_count, lb_count=2))
        fleet = HarborFleet(self, "harbor", props=HarborFleetProps.from_settings(
            s, network=network, storage=data.storage, database=data.database, cache=data.cache,
            addresses=ips.harbor_addresses, hostname=s.hostname or ips.vip_address))
        lb_pair = LoadBalancerPair(self, "lb", props=LoadBalancerPairProps(
            network=network, static_ips=ips, real_server_ips=tuple(a.private_ip for a in ips.harbor_addresses),
            name=f"{s.name}-lb", instance_type=s.lb_instance_type, client_cidrs=s.admin_cidrs,
            ssh_cidrs=s.ssh_cidrs))
        lb_pair.allow_to(fleet)
        ips.associate_initially(lb_pair.instance_ids[0])

        url = f"https://{s.hostname}" if s.hostname else Fn.join("", ["https://", ips.vip_address])
        self.output("harbor_url", url, "Where clients reach Harbor (the VIP)")
        self.output("vip_address", ips.vip_address, "The virtual IP: an Elastic IP held by the MASTER load balancer")
        self.output("vip_allocation_id", ips.vip_allocation_id, "Allocation id of the VIP Elastic IP")
        self.output("harbor_private_ips", fleet.private_ips, "Fixed private addresses of the Harbor servers")
        self.output("harbor_instance_ids", fleet.instance_ids, "EC2 instances of the Harbor servers")
        self.output("lb_private_ips", lb_pair.private_ips, "Fixed private addresses of the load balancers")
        self.output("lb_instance_ids", lb_pair.instance_ids, "EC2 instances of the load balancers")
        self.output("db_endpoint", data.database.db_endpoint, "PostgreSQL endpoint (host:port), TLS only")
        self.output("redis_endpoint", data.cache.redis_endpoint, "Redis primary endpoint, TLS only")
        self.output("bucket", data.storage.bucket_name, "S3 bucket holding the image layers")
        self.output("db_master_secret_arn", data.database.master_user_secret_arn,
                    "Secrets Manager secret of the database master user (managed by RDS)")
        self.output("redis_auth_secret_arn", data.cache.auth_token_secret_arn, "Secrets Manager secret of the Redis AUTH token")
        self.output("harbor_secrets_arn", fleet.shared_secrets_arn,
                    "Secrets Manager secret of Harbor's shared keys (created by the first node at boot)")
        self.output("admin_secret_arn", fleet.admin_secret_arn, "Secrets Manager secret of Harbor's admin password")
