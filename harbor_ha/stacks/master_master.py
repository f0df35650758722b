"""Solution 4, master-master: two full Harbors, by default in two regions, replicating both ways.

    region (primary)                                     secondary_region
    Harbor A (own DB, Redis, storage) <── replication ──> Harbor B (own DB, Redis, storage)
              event-based pushes both ways + an hourly full sync each way

Each Harbor takes pushes and serves pulls. Both push to each other and neither pulls: an artifact that comes
back finds its digest already there and is skipped. Event-based sync misses what happens while the peer is
down (goharbor#21119); the scheduled full sync heals it. The two talk over the internet at their Elastic IPs,
each admitting the other's address only (plus ``admin_cidrs`` for clients).

Names: with ``hostname`` set, a Route 53 zone of that name holds ``a.<hostname>`` and ``b.<hostname>``, each
Harbor's own name (its Harbor ``hostname``, external URL and certificate; delegate the zone, output
``zone_name_servers``). Without it, clients and peers use the Elastic IPs.
"""

from __future__ import annotations

from harbor_ha.aws import Construct, Route53Record, Route53Zone
from harbor_ha.constructs.harbor_node import StandaloneHarborNode
from harbor_ha.constructs.network import HarborNetwork
from harbor_ha.constructs.region import RegionScope
from harbor_ha.constructs.replication import HarborReplication, HarborReplicationProps
from harbor_ha.rules import SITE_LABELS, site_name
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks.base import HarborHaStack
from harbor_ha.stacks.props import network_props, replication_tls_trust, standalone_props


class MasterMasterStack(HarborHaStack):
    stack_name = "master-master"

    def __init__(self, scope: Construct, id_: str, *, settings: HarborHaSettings,
                 local_endpoint: str | None = None) -> None:
        super().__init__(scope, id_, settings=settings, local_endpoint=local_endpoint)
        s = self.settings
        secondary = RegionScope(self, "secondary", provider=self.regional_provider(s.secondary_region, "secondary"))
        sites = []
        # The second region's zones are its a and b zones (availability_zones names the first region's).
        first, second = SITE_LABELS
        regional = ((self, s, first),
                    (secondary, s.replace(region=s.secondary_region, availability_zones=()), second))
        for scope_, site_settings, label in regional:
            network = HarborNetwork(scope_, f"network-{label}", props=network_props(site_settings))
            node = StandaloneHarborNode(scope_, f"harbor-{label}", props=standalone_props(
                s, network, site_name(s.resource_prefix, label), 0, own_name=f"{label}.{s.hostname}" if s.hostname else ""))
            node.allow_from_cidrs(s.admin_cidrs)
            sites.append((scope_, label, node, network))
        for (scope_, label, node, network), (_, peer_label, peer, _) in zip(sites, sites[::-1]):
            # In the source's region: the configurator's carrier bucket sits beside the node that fetches it.
            HarborReplication(scope_, f"replication-{label}", props=HarborReplicationProps(
                source=node, peers=[(f"harbor-{peer_label}", peer)], over_internet=True,
                name=site_name(s.resource_prefix, label), tls_trust=replication_tls_trust(s),
                force_destroy=not s.effective_deletion_protection, access_logs=network.log_bucket))

        if s.hostname:
            zone = Route53Zone(self, "zone", name=s.hostname, force_destroy=True,
                               comment=f"{s.resource_prefix}: the names of Harbor A and B")
            self.log_zone_queries(zone, s.hostname)
            for _, label, node, _ in sites:
                Route53Record(self, f"harbor-{label}-name", zone_id=zone.zone_id, name=f"{label}.{s.hostname}",
                              type="A", ttl=60, records=[node.public_ip])
            self.output("zone_name_servers", zone.name_servers, f"Delegate {s.hostname} to these name servers")
        for _, label, node, _ in sites:
            self.output(f"harbor_{label}_url", node.url,
                        f"Harbor {label.upper()} at its name ({label}.<hostname>), or its Elastic IP")
            self.output(f"harbor_{label}_admin_secret_arn", node.admin_secret_arn,
                        f"Secrets Manager secret of Harbor {label.upper()}'s admin password")
