"""``harbor-ha cost``: the monthly cost of a stack, from its synthesized resources and the price table kept in
``harbor_ha/data/prices.json`` (on-demand list prices, with their source and date).

Every resource is either priced by a rule below, free (``FREE_TYPES``: AWS does not charge for it), or named as
unpriced with the reason (a type, class or region the table does not hold, or a resource type without a rule):
nothing is guessed. Usage-based charges (data transfer, NAT gateway bytes, DNS queries, requests) are not in
the figure; stored images are, at ``image_gib`` per image bucket (each standalone Harbor of the replication
topologies holds its own full copy).

    harbor-ha cost active-active            # table of line items, total, the price table's date and source
    harbor-ha cost active-active --json
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harbor_ha.synthesized import SynthesizedStack

PRICES = Path(__file__).resolve().parent / "data" / "prices.json"
DEFAULT_IMAGE_GIB = 100

# AWS charges nothing for these (or only through other resources' usage).
FREE_TYPES = frozenset({
    "aws_vpc", "aws_subnet", "aws_internet_gateway", "aws_route", "aws_route_table", "aws_route_table_association",
    "aws_security_group", "aws_default_security_group", "aws_vpc_security_group_ingress_rule",
    "aws_vpc_security_group_egress_rule", "aws_iam_role", "aws_iam_role_policy", "aws_iam_role_policy_attachment",
    "aws_iam_instance_profile", "aws_kms_alias", "aws_secretsmanager_secret_version", "aws_db_subnet_group",
    "aws_db_parameter_group", "aws_elasticache_subnet_group", "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_ownership_controls", "aws_s3_bucket_policy", "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration", "aws_s3_bucket_versioning", "aws_eip_association",
    # Standard-tier parameters (the LB pair's real-server list) are free; KMS requests for them are fractions of a cent.
    "aws_ssm_parameter",
    # A few KB (the replication configurator, certificates): far below a cent.
    "aws_s3_object",
    # Billed per query (usage); the zone carries the monthly charge.
    "aws_route53_record",
    # Logs are billed by the GB delivered and stored (usage): the flow logs, S3 access logs and DNS query logs.
    "aws_flow_log", "aws_s3_bucket_logging", "aws_cloudwatch_log_group", "aws_route53_query_log",
    "aws_cloudwatch_log_resource_policy",
})


@dataclass(frozen=True)
class LineItem:
    address: str
    what: str
    quantity: float
    unit: str
    unit_price: float

    @property
    def monthly(self) -> float:
        return self.quantity * self.unit_price


@dataclass
class Estimate:
    stack: str
    items: list[LineItem] = field(default_factory=list)
    unpriced: list[tuple[str, str]] = field(default_factory=list)
    """``(address, why)`` of each resource the table cannot price."""
    prices: dict = field(default_factory=dict, repr=False)
    image_gib: float = DEFAULT_IMAGE_GIB

    @property
    def total(self) -> float:
        return round(sum(item.monthly for item in self.items), 2)

    def by_kind(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for item in self.items:
            kind = item.address.split(".")[0]
            totals[kind] = totals.get(kind, 0.0) + item.monthly
        return {kind: round(total, 2) for kind, total in sorted(totals.items())}

    def as_json(self) -> dict:
        return {
            "stack": self.stack, "currency": self.prices["currency"], "monthly_total": self.total,
            "complete": not self.unpriced, "image_gib_per_bucket": self.image_gib,
            "by_resource_type": self.by_kind(),
            "items": [{**asdict(i), "monthly": round(i.monthly, 2)} for i in self.items],
            "unpriced": [{"address": a, "why": why} for a, why in self.unpriced],
            "price_table": {"date": self.prices["date"], "kind": self.prices["kind"],
                            "regions": self.prices["regions"], "sources": self.prices["sources"]},
            "not_included": NOT_INCLUDED,
        }

    def text(self) -> str:
        p = self.prices
        lines = [f"{self.stack}: monthly cost at {p['currency']} on-demand list prices ({p['hours_per_month']} h)", ""]
        width = max((len(i.what) for i in self.items), default=10)
        for item in self.items:
            lines.append(f"  {item.what:<{width}}  {item.quantity:>9g} {item.unit:<11} x {item.unit_price:<8g} "
                         f"= {item.monthly:>9.2f}")
        lines.append(f"  {'total':<{width}}  {'':>33} {self.total:>9.2f} {p['currency']}/month")
        if self.unpriced:
            lines += ["", "  NOT PRICED (the total leaves these out; add them to harbor_ha/data/prices.json):"]
            lines += [f"    {address}: {why}" for address, why in self.unpriced]
        lines += ["", f"  Not included: {NOT_INCLUDED}",
                  f"  Price table: {p['kind']}, dated {p['date']}, regions {', '.join(p['regions'])} "
                  f"(harbor_ha/data/prices.json; sources there)."]
        return "\n".join(lines)


NOT_INCLUDED = ("data transfer, NAT gateway bytes ($0.045/GB), DNS queries, S3 requests, backups beyond the free "
                "allowance, KMS key rotations after the first year, logs (flow, S3 access, DNS query and RDS "
                "monitoring logs, billed by the GB), taxes")


def load_prices(path: Path = PRICES) -> dict:
    return json.loads(Path(path).read_text())


def estimate(doc: dict, stack: str, prices: dict | None = None, image_gib: float = DEFAULT_IMAGE_GIB) -> Estimate:
    """Price every resource of the synthesized stack ``doc``."""
    prices = prices or load_prices()
    synthesized = SynthesizedStack(doc)
    result = Estimate(stack, prices=prices, image_gib=image_gib)
    eip_holders = {synthesized.reference(body.get("instance"), "aws_instance")
                   for _, body in synthesized.resources("aws_eip")}
    eip_holders |= {synthesized.reference(body.get("instance_id"), "aws_instance")
                    for _, body in synthesized.resources("aws_eip_association")}
    # Buckets that hold no images: the replication configurator's carrier (a few KB) and the log buckets (usage).
    imageless_buckets = set(synthesized.carrier_buckets()) | synthesized.log_buckets()
    context = _Context(prices, result, image_gib, eip_holders, imageless_buckets)
    for kind, address, body in synthesized.all_resources():
        if kind in FREE_TYPES:
            continue
        region = synthesized.region(body)
        if region not in prices["regions"]:
            listed = ", ".join(prices["regions"])
            result.unpriced.append((address, f"region {region} is not in the price table ({listed})"))
            continue
        rule = RULES.get(kind)
        if rule is None:
            result.unpriced.append((address, f"no price rule for resource type {kind}"))
            continue
        rule(context, address, body)
    return result


@dataclass
class _Context:
    prices: dict
    result: Estimate
    image_gib: float
    eip_holders: set
    imageless_buckets: set

    def add(self, address: str, what: str, quantity: float, unit: str, unit_price: float) -> None:
        self.result.items.append(LineItem(address, what, quantity, unit, unit_price))

    def price(self, address: str, table: str, key: str, *path: str) -> float | None:
        """The price of ``key`` in table ``table`` (below ``path``), or None after naming it unpriced."""
        found = self.prices[table]
        for step in path:
            found = found.get(step, {})
        if key not in found:
            where = f"{table}{''.join(f'.{p}' for p in path)}"
            self.result.unpriced.append((address, f"{key} is not in the price table ({where})"))
            return None
        return found[key]

    @property
    def hours(self) -> int:
        return self.prices["hours_per_month"]


def _instance(ctx: _Context, address: str, body: dict) -> None:
    kind = body.get("instance_type", "")
    hourly = ctx.price(address, "ec2_instance_hour", kind)
    if hourly is not None:
        ctx.add(address, f"EC2 {kind} ({_name(body)})", ctx.hours, "hours", hourly)
    volume = body.get("root_block_device") or {}
    volume = volume[0] if isinstance(volume, list) else volume
    size, volume_type = volume.get("volume_size", 8), volume.get("volume_type", "gp3")
    per_gb = ctx.price(address, "ebs_gb_month", volume_type)
    if per_gb is not None:
        ctx.add(address, f"EBS {volume_type} root volume ({_name(body)})", size, "GB-months", per_gb)
    # An auto-assigned public address is released when an Elastic IP is given to the instance.
    if body.get("associate_public_ip_address") and address not in ctx.eip_holders:
        ctx.add(address, f"public IPv4 of {_name(body)}", ctx.hours, "hours", ctx.prices["public_ipv4_hour"])


def _eip(ctx: _Context, address: str, body: dict) -> None:
    ctx.add(address, f"Elastic IP {_name(body)} (public IPv4)", ctx.hours, "hours", ctx.prices["public_ipv4_hour"])


def _nat_gateway(ctx: _Context, address: str, body: dict) -> None:
    ctx.add(address, f"NAT gateway {_name(body)}", ctx.hours, "hours", ctx.prices["nat_gateway_hour"])


def _db_instance(ctx: _Context, address: str, body: dict) -> None:
    engine, klass = body.get("engine", ""), body.get("instance_class", "")
    copies = 2 if body.get("multi_az") else 1
    deployment = "Multi-AZ: primary + standby" if copies == 2 else "single-AZ"
    hourly = ctx.price(address, "rds_instance_hour", klass, engine)
    if hourly is not None:
        ctx.add(address, f"RDS {engine} {klass} ({deployment})", ctx.hours * copies, "hours", hourly)
    storage_type = body.get("storage_type", "gp2")
    per_gb = ctx.price(address, "rds_storage_gb_month", storage_type)
    if per_gb is not None:
        ctx.add(address, f"RDS {storage_type} storage ({deployment})",
                float(body.get("allocated_storage", 20)) * copies, "GB-months", per_gb)


def _replication_group(ctx: _Context, address: str, body: dict) -> None:
    node_type = body.get("node_type", "")
    nodes = body.get("num_cache_clusters") or int(body.get("num_node_groups", 1)) * (
        1 + int(body.get("replicas_per_node_group", 0)))
    hourly = ctx.price(address, "elasticache_node_hour", node_type)
    if hourly is not None:
        ctx.add(address, f"ElastiCache {node_type} x {nodes}", ctx.hours * int(nodes), "node-hours", hourly)


def _bucket(ctx: _Context, address: str, body: dict) -> None:
    if address in ctx.imageless_buckets:
        return  # the replication configurator and certificates (a few KB), or logs (usage)
    name = body.get("bucket") or f"{body.get('bucket_prefix', '')}*"
    ctx.add(address, f"S3 Standard, {name} (assumed images)", ctx.image_gib, "GB-months",
            ctx.prices["s3_standard_gb_month"])


def _kms_key(ctx: _Context, address: str, body: dict) -> None:
    ctx.add(address, f"KMS key ({body.get('description', '')})", 1, "key-months", ctx.prices["kms_key_month"])


def _secret(ctx: _Context, address: str, body: dict) -> None:
    ctx.add(address, f"Secrets Manager secret ({body.get('description', '')})", 1, "secret-months",
            ctx.prices["secretsmanager_secret_month"])


def _zone(ctx: _Context, address: str, body: dict) -> None:
    ctx.add(address, f"Route 53 hosted zone {body.get('name', '')}", 1, "zone-months",
            ctx.prices["route53_zone_month"])


def _health_check(ctx: _Context, address: str, body: dict) -> None:
    # Optional features are each billed on top: HTTPS and string matching are named by the type.
    check_type = body.get("type", "")
    features = ("HTTPS" in check_type) + ("STR_MATCH" in check_type)
    ctx.add(address, f"Route 53 health check ({check_type})", 1, "check-months",
            ctx.prices["route53_health_check_month"] + features * ctx.prices["route53_health_check_feature_month"])


def _vpc_endpoint(ctx: _Context, address: str, body: dict) -> None:
    if body.get("vpc_endpoint_type", "Gateway") != "Gateway":
        ctx.result.unpriced.append((address, f"interface endpoints are not in the price table"))
    # Gateway endpoints (S3) are free.


def _name(body: dict) -> str:
    return (body.get("tags") or {}).get("Name", "")


RULES = {
    "aws_instance": _instance, "aws_eip": _eip, "aws_nat_gateway": _nat_gateway, "aws_db_instance": _db_instance,
    "aws_elasticache_replication_group": _replication_group, "aws_s3_bucket": _bucket, "aws_kms_key": _kms_key,
    "aws_secretsmanager_secret": _secret, "aws_route53_zone": _zone, "aws_route53_health_check": _health_check,
    "aws_vpc_endpoint": _vpc_endpoint,
}
