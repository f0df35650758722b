"""Solution 3, master-slaves: one master takes every push, read-only replicas serve pulls.

    push.<zone> ──> master Harbor (own DB, Redis, storage) ──replication (event + hourly full sync)──┐
                                                                                                    v
    pull.<zone> ──> Route 53 multivalue answer over the healthy replicas ──> replica Harbors 1..k

Each Harbor is complete on its own: its built-in PostgreSQL and Redis, its own bucket (or EBS volume,
setting ``node_storage``). The master's boot runs the replication configurator against every replica.

Pull endpoint: Route 53 multivalue-answer records, one per replica, each tied to a health check that reads
the body of ``/api/v2.0/health`` (HTTP 200 is no sign of health in Harbor); DNS then answers with the healthy
replicas only. Chosen over an LB pair because replicas may sit in several AZs or regions and pulls are many
short independent requests that DNS spreads well; no VM to run. The zone is ``hostname`` (default
``<name>.harbor-ha.internal``): delegate it from your domain (output ``zone_name_servers``). Route 53's health
checkers come from the internet: ``admin_cidrs`` must admit them (the default admits everyone).

Read-only replicas: Harbor's global read-only switch would also block the replication pushes
(goharbor#18281), so replicas are read-only through project roles instead: each replica runs the pull-only
guard (``replication.py --pull-only``) at boot and every five minutes, which allows only admins to create
projects, turns every project member who may push into a Guest and disables robots that may push. Only the
replication account (the replica's admin) pushes. A role given by hand holds until the guard's next run.
"""

from __future__ import annotations

from harbor_ha.aws import Construct, Route53HealthCheck, Route53Record, Route53Zone
from harbor_ha.constructs.harbor_node import StandaloneHarborNode, StandaloneHarborNodeProps
from harbor_ha.constructs.network import HarborNetwork, HarborNetworkProps
from harbor_ha.constructs.replication import HarborReplication, HarborReplicationProps
from harbor_ha.settings import SELF_SIGNED, HarborHaSettings
from harbor_ha.stacks.base import HarborHaStack

HEALTHY_BODY = '"status":"healthy"'


def standalone_props(settings: HarborHaSettings, network, name: str, zone_index: int) -> StandaloneHarborNodeProps:
    """A public standalone Harbor of a replication topology, from the deployment's settings."""
    return StandaloneHarborNodeProps(
        network=network, name=name, zone_index=zone_index % len(network.availability_zones), public=True,
        storage=settings.node_storage, instance_type=settings.harbor_instance_type,
        harbor_version=settings.harbor_version, volume_gib=settings.harbor_volume_gib,
        ssh_cidrs=tuple(settings.ssh_cidrs), tls_certificate=settings.tls_certificate,
        force_destroy=not settings.effective_deletion_protection)


def replication_tls_trust(settings: HarborHaSettings) -> str:
    """Self-signed nodes trust each other's pinned certificates; a ``tls_certificate`` of the user's names a
    host while replication reaches the nodes at their addresses, so it cannot be verified there."""
    return "pinned" if settings.tls_certificate == SELF_SIGNED else "none"


class MasterSlavesStack(HarborHaStack):
    stack_name = "master-slaves"

    def __init__(self, scope: Construct, id_: str, *, settings: HarborHaSettings,
                 local_endpoint: str | None = None) -> None:
        super().__init__(scope, id_, settings=settings, local_endpoint=local_endpoint)
        s = settings
        network = HarborNetwork(self, "network", props=HarborNetworkProps.from_settings(s))
        master = StandaloneHarborNode(self, "master", props=standalone_props(s, network, f"{s.name}-master", 0))
        replicas = [StandaloneHarborNode(self, f"replica-{i}", props=standalone_props(
            s, network, f"{s.name}-replica-{i}", i + 1)) for i in range(s.replica_count)]
        for node in (master, *replicas):
            node.allow_from_cidrs(s.admin_cidrs)
        HarborReplication(self, "replication", props=HarborReplicationProps(
            source=master, peers=[(f"replica-{i}", replica) for i, replica in enumerate(replicas)], name=s.name,
            pull_only_peers=True, tls_trust=replication_tls_trust(s),
            force_destroy=not s.effective_deletion_protection))

        zone_name = s.hostname or f"{s.name}.harbor-ha.internal"
        zone = Route53Zone(self, "zone", name=zone_name, comment=f"{s.name}: Harbor push and pull endpoints",
                           force_destroy=True)
        Route53Record(self, "push", zone_id=zone.zone_id, name=f"push.{zone_name}", type="A", ttl=60,
                      records=[master.public_ip])
        for i, replica in enumerate(replicas):
            check = Route53HealthCheck(self, f"replica-{i}-health", type="HTTPS_STR_MATCH",
                                       ip_address=replica.public_ip, port=443, resource_path="/api/v2.0/health",
                                       search_string=HEALTHY_BODY, request_interval=30, failure_threshold=3,
                                       tags={"Name": f"{s.name}-replica-{i}"})
            Route53Record(self, f"pull-{i}", zone_id=zone.zone_id, name=f"pull.{zone_name}", type="A", ttl=30,
                          records=[replica.public_ip], set_identifier=f"replica-{i}",
                          multivalue_answer_routing_policy=True, health_check_id=check.id)

        self.output("push_endpoint", f"https://push.{zone_name}", "Where clients push (the master)")
        self.output("pull_endpoint", f"https://pull.{zone_name}", "Where clients pull (the healthy replicas)")
        self.output("harbor_url", master.url, "The master Harbor at its own address")
        self.output("replica_urls", [replica.url for replica in replicas], "Each replica at its own address")
        self.output("zone_name_servers", zone.name_servers, f"Delegate {zone_name} to these name servers")
        self.output("admin_secret_arns", [node.admin_secret_arn for node in (master, *replicas)],
                    "Secrets Manager secrets of the admin passwords: master first, then the replicas")
