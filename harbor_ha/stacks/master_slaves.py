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

Names: the master is ``push.<zone>``; replica i is ``replica-<i>.<zone>``, and ``pull.<zone>`` answers with
the healthy replicas. With ``hostname`` set these are Harbor's own names on the nodes (its ``hostname``,
external URL and token service: a replica sends a client for a token to itself, not to the shared pull
name, since each replica signs its own tokens). Self-signed certificates carry them always, beside the
node's Elastic IP, private address and 127.0.0.1; a certificate of the user's must cover ``push.<zone>``,
``pull.<zone>`` and every ``replica-<i>.<zone>`` (a wildcard ``*.<zone>`` does).

Read-only replicas: Harbor's global read-only switch would also block the replication pushes
(goharbor#18281), so replicas are read-only through project roles instead: each replica runs the pull-only
guard (``replication.py --pull-only``) at boot and every five minutes, which allows only admins to create
projects, turns every project member who may push into a Guest and disables robots that may push. Only the
replication account (the replica's admin) pushes. A role given by hand holds until the guard's next run.
"""

from __future__ import annotations

from harbor_ha.aws import Construct, Route53HealthCheck, Route53Record, Route53Zone
from harbor_ha.constructs.harbor_node import StandaloneHarborNode
from harbor_ha.constructs.network import HarborNetwork
from harbor_ha.constructs.replication import HarborReplication, HarborReplicationProps
from harbor_ha.rules import master_name, replica_name
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks.base import HarborHaStack
from harbor_ha.stacks.props import network_props, replication_tls_trust, standalone_props

HEALTHY_BODY = '"status":"healthy"'


class MasterSlavesStack(HarborHaStack):
    stack_name = "master-slaves"

    def __init__(self, scope: Construct, id_: str, *, settings: HarborHaSettings,
                 local_endpoint: str | None = None) -> None:
        super().__init__(scope, id_, settings=settings, local_endpoint=local_endpoint)
        s = self.settings
        network = HarborNetwork(self, "network", props=network_props(s))
        zone_name = s.hostname or f"{s.resource_prefix}.harbor-ha.internal"
        push, pull = f"push.{zone_name}", f"pull.{zone_name}"
        master = StandaloneHarborNode(self, "master", props=standalone_props(
            s, network, master_name(s.resource_prefix), 0, own_name=push))
        # A replica's own name, not the shared pull name, is its Harbor's name: the token service a client is
        # sent to must be the replica that answered (each replica signs its own tokens).
        replica_names = [f"replica-{i}.{zone_name}" for i in range(s.replica_count)]
        replicas = [StandaloneHarborNode(self, f"replica-{i}", props=standalone_props(
            s, network, replica_name(s.resource_prefix, i), i + 1, own_name=replica_names[i], other_names=(pull,)))
            for i in range(s.replica_count)]
        for node in (master, *replicas):
            node.allow_from_cidrs(s.admin_cidrs)
        HarborReplication(self, "replication", props=HarborReplicationProps(
            source=master, peers=[(f"replica-{i}", replica) for i, replica in enumerate(replicas)],
            name=s.resource_prefix,
            pull_only_peers=True, tls_trust=replication_tls_trust(s),
            force_destroy=not s.effective_deletion_protection, access_logs=network.log_bucket))

        zone = Route53Zone(self, "zone", name=zone_name,
                           comment=f"{s.resource_prefix}: Harbor push and pull endpoints", force_destroy=True)
        self.log_zone_queries(zone, zone_name)
        Route53Record(self, "push", zone_id=zone.zone_id, name=push, type="A", ttl=60, records=[master.public_ip])
        for i, replica in enumerate(replicas):
            Route53Record(self, f"replica-{i}-name", zone_id=zone.zone_id, name=replica_names[i], type="A", ttl=60,
                          records=[replica.public_ip])
            check = Route53HealthCheck(self, f"replica-{i}-health", type="HTTPS_STR_MATCH",
                                       ip_address=replica.public_ip, port=443, resource_path="/api/v2.0/health",
                                       search_string=HEALTHY_BODY, request_interval=30, failure_threshold=3,
                                       tags={"Name": f"{s.resource_prefix}-r{i}"})
            Route53Record(self, f"pull-{i}", zone_id=zone.zone_id, name=pull, type="A", ttl=30,
                          records=[replica.public_ip], set_identifier=f"replica-{i}",
                          multivalue_answer_routing_policy=True, health_check_id=check.id)

        self.output("push_endpoint", f"https://{push}", "Where clients push (the master)")
        self.output("pull_endpoint", f"https://{pull}", "Where clients pull (the healthy replicas)")
        self.output("harbor_url", master.url, "The master Harbor at its own name (push), or its Elastic IP")
        self.output("replica_urls", [replica.url for replica in replicas],
                    "Each replica at its own name (replica-<i>.<zone>), or its Elastic IP")
        self.output("zone_name_servers", zone.name_servers, f"Delegate {zone_name} to these name servers")
        self.output("admin_secret_arns", [node.admin_secret_arn for node in (master, *replicas)],
                    "Secrets Manager secrets of the admin passwords: master first, then the replicas")
