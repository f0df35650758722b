#!/usr/bin/env python
"""An outside project's own stack that imports harbor-ha's load-balancer pair and Harbor fleet with custom
props: three larger Harbor servers over three AZs, a single NAT gateway, SSH from an admin network, and clients limited to a corporate range.

Run from this directory: `pipenv run python main.py` (synthesizes into cdktf.out/), or with the cdktf CLI.
"""

from harbor_ha.aws import App, AwsProvider, TerraformOutput, TerraformStack
from harbor_ha.constructs import (
    HarborCacheProps, HarborDatabaseProps, HarborFleet, HarborFleetProps, HarborNetwork,
    HarborNetworkProps, LoadBalancerPair, LoadBalancerPairProps, RegistryStorageProps, SharedData,
    SharedDataProps, StaticIps, StaticIpsProps,
)

CORPORATE = ("198.51.100.0/24",)
ADMINS = ("192.0.2.0/28",)


class RegistryStack(TerraformStack):
    def __init__(self, scope, id_: str) -> None:
        super().__init__(scope, id_)
        AwsProvider(self, "aws", region="eu-central-1")
        network = HarborNetwork(self, "network", props=HarborNetworkProps(
            name="corp-registry", availability_zones=("eu-central-1a", "eu-central-1b", "eu-central-1c"),
            vpc_cidr="10.77.0.0/16", single_nat_gateway=True))
        data = SharedData(self, "data", props=SharedDataProps(
            storage=RegistryStorageProps(name="corp-registry", noncurrent_version_expiration_days=90),
            database=HarborDatabaseProps(name="corp-registry", vpc_id=network.vpc_id,
                                         subnet_ids=tuple(network.private_subnet_ids), instance_class="db.t4g.large"),
            cache=HarborCacheProps(name="corp-registry", vpc_id=network.vpc_id,
                                   subnet_ids=tuple(network.private_subnet_ids), node_count=3)))
        ips = StaticIps(self, "ips", props=StaticIpsProps(network=network, name="corp-registry", harbor_count=3))
        fleet = HarborFleet(self, "harbor", props=HarborFleetProps(
            network=network, storage=data.storage, database=data.database, cache=data.cache,
            hostname="registry.corp.example", name="corp-registry", count=3, instance_type="m6i.xlarge",
            addresses=ips.harbor_addresses, ssh_cidrs=ADMINS, volume_gib=200))
        LoadBalancerPair(self, "lb", props=LoadBalancerPairProps(
            network=network, static_ips=ips, targets=fleet,
            name="corp-registry-lb", instance_type="c6i.large", client_cidrs=CORPORATE, ssh_cidrs=ADMINS))
        TerraformOutput(self, "vip", value=ips.vip_address)


if __name__ == "__main__":
    app = App()
    RegistryStack(app, "corp-registry")
    app.synth()
