#!/usr/bin/env python
"""An outside project's stack that makes its own VPC and puts harbor-ha's Harbor fleet and load-balancer pair
in it: the VPC and subnets are the project's resources, handed to ``HarborNetworkProps`` as references
(``vpc.id``, ``subnet.id``) that Terraform resolves at apply.

Run from this directory: `pipenv run python main.py` (synthesizes into cdktf.out/), or with the cdktf CLI.
"""

from harbor_ha.aws import (
    App, AwsProvider, Eip, InternetGateway, NatGateway, Route, RouteTable, RouteTableAssociation, Subnet,
    TerraformOutput, TerraformStack, Vpc,
)
from harbor_ha.constructs import (
    HarborCacheProps, HarborDatabaseProps, HarborFleet, HarborFleetProps, HarborNetwork,
    HarborNetworkProps, LoadBalancerPair, LoadBalancerPairProps, RegistryStorageProps, SharedData,
    SharedDataProps, StaticIps, StaticIpsProps,
)

NAME = "own-vpc"
ZONES = ("eu-west-1a", "eu-west-1b")


class OwnVpcStack(TerraformStack):
    def __init__(self, scope, id_: str) -> None:
        super().__init__(scope, id_)
        AwsProvider(self, "aws", region="eu-west-1")
        # The project's own network: public subnets routed to the internet, private ones through one NAT gateway.
        vpc = Vpc(self, "vpc", cidr_block="10.90.0.0/16", enable_dns_support=True, enable_dns_hostnames=True)
        gateway = InternetGateway(self, "gateway", vpc_id=vpc.id)
        public_routes = RouteTable(self, "public-routes", vpc_id=vpc.id)
        Route(self, "to-internet", route_table_id=public_routes.id, destination_cidr_block="0.0.0.0/0",
              gateway_id=gateway.id)
        public = [Subnet(self, f"public-{i}", vpc_id=vpc.id, availability_zone=zone, cidr_block=f"10.90.{i}.0/24")
                  for i, zone in enumerate(ZONES)]
        private = [Subnet(self, f"private-{i}", vpc_id=vpc.id, availability_zone=zone,
                          cidr_block=f"10.90.{10 + i}.0/24") for i, zone in enumerate(ZONES)]
        nat = NatGateway(self, "nat", subnet_id=public[0].id, depends_on=[gateway],
                         allocation_id=Eip(self, "nat-address", domain="vpc").allocation_id)
        private_routes = RouteTable(self, "private-routes", vpc_id=vpc.id)
        Route(self, "through-nat", route_table_id=private_routes.id, destination_cidr_block="0.0.0.0/0",
              nat_gateway_id=nat.id)
        for kind, subnets, table in (("public", public, public_routes), ("private", private, private_routes)):
            for i, subnet in enumerate(subnets):
                RouteTableAssociation(self, f"{kind}-{i}-routes", subnet_id=subnet.id, route_table_id=table.id)

        # harbor-ha in it: the network construct only looks the VPC and subnets up.
        network = HarborNetwork(self, "network", props=HarborNetworkProps(
            name=NAME, vpc_id=vpc.id, public_subnet_ids=tuple(s.id for s in public),
            private_subnet_ids=tuple(s.id for s in private)))
        data = SharedData(self, "data", props=SharedDataProps(
            storage=RegistryStorageProps(name=NAME),
            database=HarborDatabaseProps(name=NAME, vpc_id=network.vpc_id,
                                         subnet_ids=tuple(network.private_subnet_ids)),
            cache=HarborCacheProps(name=NAME, vpc_id=network.vpc_id, subnet_ids=tuple(network.private_subnet_ids))))
        ips = StaticIps(self, "ips", props=StaticIpsProps(network=network, name=NAME, harbor_count=2))
        fleet = HarborFleet(self, "harbor", props=HarborFleetProps(
            network=network, storage=data.storage, database=data.database, cache=data.cache, name=NAME, count=2,
            addresses=ips.harbor_addresses, hostname="registry.example.com"))
        LoadBalancerPair(self, "lb", props=LoadBalancerPairProps(
            network=network, static_ips=ips, targets=fleet,
            name=f"{NAME}-lb"))
        TerraformOutput(self, "vip", value=ips.vip_address)


if __name__ == "__main__":
    app = App()
    OwnVpcStack(app, "own-vpc")
    app.synth()
