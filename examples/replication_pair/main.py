#!/usr/bin/env python
"""An outside project's stack with two standalone Harbors that replicate to each other (the master-master shape
of harbor-ha, here in one region and one VPC): each Harbor has its own database, Redis and bucket on its node,
takes pushes and serves pulls, and pushes what it gets to the other (event-based, plus an hourly full sync).

Run from this directory: `pipenv run python main.py` (synthesizes into cdktf.out/), or with the cdktf CLI.
"""

from harbor_ha.aws import App, AwsProvider, TerraformOutput, TerraformStack
from harbor_ha.constructs import (
    HarborNetwork, HarborNetworkProps, HarborReplication, HarborReplicationProps,
    StandaloneHarborNode, StandaloneHarborNodeProps,
)

NAME = "pair"
ZONES = ("eu-west-1a", "eu-west-1b")
CLIENTS = ["198.51.100.0/24"]


class ReplicationPairStack(TerraformStack):
    def __init__(self, scope, id_: str) -> None:
        super().__init__(scope, id_)
        AwsProvider(self, "aws", region="eu-west-1")
        network = HarborNetwork(self, "network", props=HarborNetworkProps(name=NAME, availability_zones=ZONES))
        # One Harbor per AZ, each reachable by clients at its Elastic IP.
        harbors = {}
        for zone_index, label in enumerate(("a", "b")):
            harbor = StandaloneHarborNode(self, f"harbor-{label}", props=StandaloneHarborNodeProps(
                network=network, name=f"{NAME}-{label}", zone_index=zone_index, public=True))
            harbor.allow_from_cidrs(CLIENTS)
            harbors[label] = harbor
            TerraformOutput(self, f"harbor_{label}_url", value=harbor.url)
        # Each pushes to the other at its Elastic IP (over_internet): a node's boot names its peer's address, and
        # the peers' private addresses are those of the instances themselves, which would make each instance wait
        # for the other. Each admits the other's Elastic IP only.
        for label, peer in (("a", "b"), ("b", "a")):
            HarborReplication(self, f"replication-{label}", props=HarborReplicationProps(
                source=harbors[label], peers=[(f"harbor-{peer}", harbors[peer])], over_internet=True,
                name=f"{NAME}-{label}", access_logs=network.log_bucket))


if __name__ == "__main__":
    app = App()
    ReplicationPairStack(app, "replication-pair")
    app.synth()
