"""The four topologies side by side, as the README shows them (``harbor-ha cost --compare`` prints it; a test
keeps the README's copy in step): what each runs, its monthly cost at the default settings, what failure it
survives, and when to choose it. Counts and costs come from the synthesized stacks; the failure column states
each topology's design, with the failover times `harbor-ha drill` measured (README, "Recovery per solution")."""

from __future__ import annotations

from harbor_ha.cost import Estimate
from harbor_ha.rules import ROLE_TAG_KEY
from harbor_ha.synthesized import SynthesizedStack

SURVIVES = {
    "active-active": "a Harbor server (the load balancers' health checks drop it within 10 s), a load balancer "
                     "(VRRP moves the VIP within 2 s), an AZ (RDS and Redis fail over to the other AZ)",
    "active-standby": "the active node or its AZ (the standby takes the VIP within 2 s of a crash, 6 s after "
                      "Harbor turns unhealthy); RDS and Redis fail over to the other AZ",
    "master-slaves": "a replica (Route 53 stops answering with it after 3 failed 30 s checks); losing the master "
                     "stops pushes, pulls go on",
    "master-master": "a whole region (each Harbor takes pushes and pulls; the hourly full sync heals what the "
                     "other missed)",
}
CHOOSE = {
    "active-active": "load beyond one server; no single point of failure",
    "active-standby": "modest load, one server's capacity, simplest shared-data HA",
    "master-slaves": "many pulls from several places, one place that pushes",
    "master-master": "two regions that both push, tolerating eventual consistency",
}


def runs(doc: dict) -> str:
    """What a stack runs, counted from its synthesized resources."""
    stack = SynthesizedStack(doc)
    vms = stack.resources("aws_instance")
    harbors = sum((b.get("tags") or {}).get(ROLE_TAG_KEY) == "harbor" for _, b in vms)
    parts = [f"{harbors} Harbor VM{'s' * (harbors != 1)}"]
    if len(vms) > harbors:
        parts.append(f"{len(vms) - harbors} LB VMs")
    for _, body in stack.resources("aws_db_instance"):
        parts.append(f"RDS {body.get('instance_class')}" + (" Multi-AZ" if body.get("multi_az") else ""))
    for _, body in stack.resources("aws_elasticache_replication_group"):
        nodes = int(body.get("num_node_groups", 1)) * (1 + int(body.get("replicas_per_node_group", 0)))
        parts.append(f"{nodes} Redis nodes")
    buckets = len(stack.resources("aws_s3_bucket"))
    parts.append(f"{buckets} bucket{'s' * (buckets != 1)}")
    regions = len(stack.regions)
    if regions > 1:
        parts.append(f"{regions} regions")
    return ", ".join(parts)


def comparison_table(docs: dict[str, dict], estimates: dict[str, Estimate]) -> str:
    """Markdown table of the stacks in ``docs`` (name -> synthesized JSON) with their cost ``estimates``."""
    any_estimate = next(iter(estimates.values()))
    rows = ["| topology | runs (defaults) | monthly cost at defaults | survives | choose it for |",
            "|---|---|---|---|---|"]
    for name, doc in docs.items():
        estimate = estimates[name]
        cost = f"${estimate.total:,.0f}" + ("" if not estimate.unpriced else " + unpriced items")
        rows.append(f"| `{name}` | {runs(doc)} | {cost} | {SURVIVES[name]} | {CHOOSE[name]} |")
    prices = any_estimate.prices
    rows.append("")
    rows.append(f"Costs: {prices['kind']}, {prices['regions'][0]}, price table of {prices['date']} "
                f"(`harbor_ha/data/prices.json`), with {any_estimate.image_gib:g} GB of images per image bucket; "
                "data transfer and other usage not included. `harbor-ha cost STACK` itemizes them.")
    return "\n".join(rows)
