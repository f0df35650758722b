"""``harbor-ha diagram``: the architecture of a stack, drawn from its synthesized Terraform JSON with the
``diagrams`` package (AWS icons, laid out by graphviz's ``dot``).

What is drawn comes from the JSON alone, so the picture shows what would be deployed, not what a
description says: instances, addresses, the database, Redis, buckets, Route 53 records, grouped by region,
VPC, availability zone and subnet, with the traffic (clients -> VIP -> load balancers -> Harbor servers ->
data tier) and the replication pushes between Harbors as arrows.

Every component resource (``COMPONENT_TYPES``) is drawn, each named in the tooltip of exactly one node or
group (an SVG ``<title>`` / ``xlink:title``), which is how the tests count them; the resources that only wire
components together (``WIRING_TYPES``: route tables, security-group rules, IAM policies, bucket settings ...)
are not drawn. A resource type in neither list is an error, so a new kind of resource cannot go unnoticed.

The SVG is made self-contained (each icon embedded once as a data URI instead of a path into the Python
installation), so it shows anywhere and is the same bytes on every machine with the same graphviz release.
"""

from __future__ import annotations

import base64
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harbor_ha.constructs.replication import CONFIGURATOR_PATH
from harbor_ha.rules import ROLE_TAG_KEY, VIP_TAG_KEY
from harbor_ha.synthesized import SynthesizedStack

FORMATS = ("svg", "png")

# Drawn: each resource of these types is named by one node or group of the picture.
COMPONENT_TYPES = frozenset({
    "aws_vpc", "aws_subnet", "aws_instance", "aws_eip", "aws_eip_association", "aws_nat_gateway",
    "aws_internet_gateway", "aws_vpc_endpoint", "aws_db_instance", "aws_elasticache_replication_group",
    "aws_s3_bucket", "aws_s3_object", "aws_kms_key", "aws_secretsmanager_secret", "aws_route53_zone",
    "aws_route53_record", "aws_route53_health_check",
})
# Not drawn: what connects or configures the components above.
WIRING_TYPES = frozenset({
    "aws_route", "aws_route_table", "aws_route_table_association", "aws_security_group",
    "aws_default_security_group", "aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule",
    "aws_iam_role", "aws_iam_role_policy", "aws_iam_role_policy_attachment", "aws_iam_instance_profile",
    "aws_kms_alias", "aws_secretsmanager_secret_version", "aws_db_subnet_group", "aws_db_parameter_group",
    "aws_elasticache_subnet_group", "aws_s3_bucket_lifecycle_configuration", "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_policy", "aws_s3_bucket_public_access_block",
    # The LB pair's real-server list: configuration the directors read, drawn as the pair's arrows to the servers.
    "aws_ssm_parameter",
    "aws_s3_bucket_server_side_encryption_configuration", "aws_s3_bucket_versioning",
    # Logging: flow logs and S3 access logs configure delivery to the log bucket (drawn); a zone's DNS query log
    # group and its policy belong to the zone they log.
    "aws_flow_log", "aws_s3_bucket_logging", "aws_route53_query_log", "aws_cloudwatch_log_group",
    "aws_cloudwatch_log_resource_policy",
})

CLIENTS = "clients"


class DiagramError(ValueError):
    """The stack holds a resource type this module has not been told how to draw (or not to)."""


@dataclass
class Node:
    """One drawn component: ``addresses`` are the resources it stands for (the first is its id)."""

    addresses: list[str]
    label: str
    icon: str
    """``module.Class`` of ``diagrams.aws`` (``general.Users`` for the clients)."""
    group: tuple[str, ...] = ()
    """Keys of the nested groups it sits in (region, VPC, AZ, subnet), outermost first."""

    @property
    def id(self) -> str:
        return self.addresses[0] if self.addresses else CLIENTS


@dataclass
class Group:
    key: str
    label: str
    addresses: list[str] = field(default_factory=list)
    parent: str | None = None


@dataclass
class Edge:
    source: str
    target: str
    label: str = ""
    style: str = ""
    color: str = ""


@dataclass
class Architecture:
    """What the picture shows, before any drawing: nodes, the groups they sit in, and arrows."""

    title: str
    nodes: dict[str, Node] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def add(self, node: Node) -> Node:
        self.nodes[node.id] = node
        return node

    def join(self, address: str, node_id: str) -> None:
        """Let node ``node_id`` also stand for ``address`` (an attached resource: an EIP, a health check)."""
        self.nodes[node_id].addresses.append(address)

    def connect(self, source: str, target: str, label: str = "", **style) -> None:
        if source in self.nodes and target in self.nodes:
            self.edges.append(Edge(source, target, label, **style))

    def drawn(self) -> list[str]:
        """Every address the picture names, nodes and groups."""
        return ([a for n in self.nodes.values() for a in n.addresses]
                + [a for g in self.groups.values() for a in g.addresses])


REPLICATION_COLOR = "#C7511F"


def architecture(doc: dict, title: str) -> Architecture:
    """The architecture of the synthesized stack ``doc`` (parsed ``cdk.tf.json``)."""
    stack = SynthesizedStack(doc)
    unknown = sorted({kind for kind, _, _ in stack.all_resources()} - COMPONENT_TYPES - WIRING_TYPES)
    if unknown:
        raise DiagramError(f"no drawing rule for resource type(s) {', '.join(unknown)}: add each to "
                           "harbor_ha.diagram.COMPONENT_TYPES (and draw it) or WIRING_TYPES")
    arch = Architecture(title)
    places = _place_subnets(stack, arch)
    instance_of_eip = _eip_holders(stack)

    arch.add(Node([], "clients", "general.Users"))
    for address, body in stack.resources("aws_instance"):
        subnet = stack.reference(body.get("subnet_id"), "aws_subnet")
        arch.add(Node([address], _instance_label(body), "compute.EC2",
                      places[subnet] if subnet in places else _given_subnet(stack, arch, body)))
    for address, body in stack.resources("aws_eip"):
        tags = body.get("tags") or {}
        region_key = _region_key(stack.region(body))
        if VIP_TAG_KEY in tags:
            arch.add(Node([address], f"VIP\n(Elastic IP {tags.get('Name', '')})", "compute.EC2ElasticIpAddress",
                          (region_key,)))
    for address, body in stack.resources("aws_nat_gateway"):
        node = arch.add(Node([address], "NAT gateway", "network.NATGateway",
                             places.get(stack.reference(body.get("subnet_id"), "aws_subnet"), ())))
        eip = stack.reference(body.get("allocation_id"), "aws_eip")
        if eip:
            arch.join(eip, node.id)
    for address, body in stack.resources("aws_internet_gateway"):
        arch.add(Node([address], "internet gateway", "network.InternetGateway",
                      places.get(stack.reference(body.get("vpc_id"), "aws_vpc"), ())))
    for address, body in stack.resources("aws_vpc_endpoint"):
        service = body.get("service_name", "").rsplit(".", 1)[-1]
        arch.add(Node([address], f"{service.upper()} gateway endpoint", "network.Endpoint",
                      places.get(stack.reference(body.get("vpc_id"), "aws_vpc"), ())))
    # EIPs given to one instance (standalone Harbors) are part of that instance's node.
    for eip, (instance, association) in instance_of_eip.items():
        if eip in arch.nodes or instance not in arch.nodes:
            continue
        arch.join(eip, instance)
        arch.nodes[instance].label += "\n+ Elastic IP"
        if association:
            arch.join(association, instance)
    _data_tier(stack, arch, places)
    _buckets(stack, arch)
    _regional_services(stack, arch)
    _dns(stack, arch, instance_of_eip)
    _traffic(stack, arch, instance_of_eip)
    _replication(stack, arch, instance_of_eip)
    return arch


def _region_key(region: str) -> str:
    return f"region:{region}"


def _place_subnets(stack: SynthesizedStack, arch: Architecture) -> dict[str, tuple[str, ...]]:
    """Groups for regions, VPCs, AZs and subnets; returns each VPC's and subnet's group path."""
    places: dict[str, tuple[str, ...]] = {}
    for region in stack.regions:
        arch.groups[_region_key(region)] = Group(_region_key(region), f"Region {region}")
    for address, body in stack.resources("aws_vpc"):
        region = _region_key(stack.region(body))
        arch.groups[address] = Group(address, f"VPC {body.get('cidr_block', '')}", [address], region)
        places[address] = (region, address)
    for address, body in stack.resources("aws_subnet"):
        vpc = stack.reference(body.get("vpc_id"), "aws_vpc")
        outer = places.get(vpc, (_region_key(stack.region(body)),))
        zone = body.get("availability_zone", "")
        zone_key = f"{outer[-1]}/az:{zone}"
        arch.groups.setdefault(zone_key, Group(zone_key, f"AZ {zone}", parent=outer[-1]))
        kind = "public" if "public" in (body.get("tags") or {}).get("Name", address) else "private"
        arch.groups[address] = Group(address, f"{kind} subnet {body.get('cidr_block', '')}", [address], zone_key)
        places[address] = (*outer, zone_key, address)
    return places


def _given_subnet(stack: SynthesizedStack, arch: Architecture, body: dict) -> tuple[str, ...]:
    """The group of a subnet the stack does not create (``vpc_id`` set): in its region, named by its id."""
    region = _region_key(stack.region(body))
    subnet = str(body.get("subnet_id", ""))
    key = f"{region}/subnet:{subnet}"
    arch.groups.setdefault(key, Group(key, f"subnet {subnet}", parent=region))
    return region, key


def _instance_label(body: dict) -> str:
    tags = body.get("tags") or {}
    role = "Harbor" if tags.get(ROLE_TAG_KEY) == "harbor" else "load balancer (keepalived + LVS)"
    # A fixed address computed by Terraform (cidrhost of a given subnet) is known only at apply.
    address = body.get("private_ip", "")
    return "\n".join([tags.get("Name", ""), role, " · ".join(
        v for v in (body.get("instance_type", ""), "" if "${" in address else address) if v)])


def _eip_holders(stack: SynthesizedStack) -> dict[str, tuple[str, str | None]]:
    """Elastic IP -> (the instance it is given to, the association resource if a separate one)."""
    holders: dict[str, tuple[str, str | None]] = {}
    for address, body in stack.resources("aws_eip"):
        instance = stack.reference(body.get("instance"), "aws_instance")
        if instance:
            holders[address] = (instance, None)
    for address, body in stack.resources("aws_eip_association"):
        eip = stack.reference(body.get("allocation_id"), "aws_eip")
        instance = stack.reference(body.get("instance_id"), "aws_instance")
        if eip and instance:
            holders[eip] = (instance, address)
    return holders


def _data_tier(stack: SynthesizedStack, arch: Architecture, places) -> None:
    for address, body in stack.resources("aws_db_instance"):
        vpc = _subnet_group_vpc(stack, body.get("db_subnet_group_name"), "aws_db_subnet_group", places)
        engine = "PostgreSQL" if body.get("engine") == "postgres" else str(body.get("engine", "")).capitalize()
        multi = "Multi-AZ" if body.get("multi_az") else "single-AZ"
        arch.add(Node([address], f"RDS {engine} {body.get('engine_version', '')}\n{body.get('instance_class', '')}"
                                 f"\n{multi}, {body.get('allocated_storage', '')} GiB", "database.RDS", vpc))
    for address, body in stack.resources("aws_elasticache_replication_group"):
        vpc = _subnet_group_vpc(stack, body.get("subnet_group_name"), "aws_elasticache_subnet_group", places)
        nodes = int(body.get("num_node_groups", 1)) * (1 + int(body.get("replicas_per_node_group", 0)))
        failover = ", failover" if body.get("automatic_failover_enabled") else ""
        label = f"ElastiCache Redis {body.get('engine_version', '')}\n{nodes} x {body.get('node_type', '')}{failover}"
        arch.add(Node([address], label, "database.ElasticacheForRedis", vpc))


def _subnet_group_vpc(stack: SynthesizedStack, reference, kind: str, places) -> tuple[str, ...]:
    group = stack.reference(reference, kind)
    subnets = stack.references(stack.body(group).get("subnet_ids"), "aws_subnet") if group else []
    if subnets and subnets[0] in places:
        return places[subnets[0]][:2]
    return (_region_key(stack.region(stack.body(group))),) if group else ()


def _buckets(stack: SynthesizedStack, arch: Architecture) -> None:
    carriers, logs, objects = stack.carrier_buckets(), stack.log_buckets(), stack.bucket_objects()
    for address, body in stack.resources("aws_s3_bucket"):
        name = body.get("bucket") or f"{body.get('bucket_prefix', '')}*"
        what = "replication carrier" if address in carriers else "logs" if address in logs else "image storage"
        arch.add(Node([address], f"S3 {what}\n{name}", "storage.SimpleStorageServiceS3Bucket",
                      (_region_key(stack.region(body)),)))
        for stored in objects.get(address, ()):
            arch.join(stored, address)


def _regional_services(stack: SynthesizedStack, arch: Architecture) -> None:
    """KMS keys and Secrets Manager secrets: one node per region each, naming every resource."""
    for kind, label, icon in (("aws_kms_key", "KMS keys", "security.KeyManagementService"),
                              ("aws_secretsmanager_secret", "Secrets Manager secrets", "security.SecretsManager")):
        by_region: dict[str, list[str]] = {}
        for address, body in stack.resources(kind):
            by_region.setdefault(stack.region(body), []).append(address)
        for region, addresses in by_region.items():
            arch.add(Node(addresses, f"{label} ({len(addresses)})", icon, (_region_key(region),)))


def _dns(stack: SynthesizedStack, arch: Architecture, instance_of_eip) -> None:
    for address, body in stack.resources("aws_route53_zone"):
        arch.groups[address] = Group(address, f"Route 53 zone {body.get('name', '')}", [address])
    checked = set()
    for address, body in stack.resources("aws_route53_record"):
        zone = stack.reference(body.get("zone_id"), "aws_route53_zone")
        check = stack.reference(body.get("health_check_id"), "aws_route53_health_check")
        routing = " multivalue" if body.get("multivalue_answer_routing_policy") else ""
        label = f"{body.get('type', '')}{routing} {body.get('name', '')}"
        node = arch.add(Node([address], label + ("\nhealth-checked" if check else ""), "network.Route53",
                             (zone,) if zone else ()))
        if check:
            arch.join(check, node.id)
            checked.add(check)
        arch.connect(CLIENTS, node.id)
        for eip in stack.references(body.get("records"), "aws_eip"):
            target = eip if eip in arch.nodes else instance_of_eip.get(eip, (None,))[0]
            if target:
                arch.connect(node.id, target)
    for address, body in stack.resources("aws_route53_health_check"):
        if address not in checked:
            arch.add(Node([address], f"health check {body.get('resource_path', '')}", "network.Route53"))


def _traffic(stack: SynthesizedStack, arch: Architecture, instance_of_eip) -> None:
    """Clients -> VIP -> its holders -> Harbor servers -> data tier; clients -> standalone Harbors."""
    instances = dict(stack.resources("aws_instance"))
    harbors = [a for a, b in instances.items() if (b.get("tags") or {}).get(ROLE_TAG_KEY) == "harbor"]
    vip_holders = [a for a, b in instances.items() if VIP_TAG_KEY in (b.get("tags") or {})]
    for address, body in stack.resources("aws_eip"):
        if address not in arch.nodes:
            continue
        initial = instance_of_eip.get(address, (None,))[0]
        arch.connect(CLIENTS, address, "HTTPS")
        for holder in vip_holders:
            arch.connect(address, holder, "MASTER" if holder == initial else "on failover",
                         style="" if holder == initial else "dashed")
    for lb in (a for a in vip_holders if a not in harbors):
        for harbor in harbors:
            arch.connect(lb, harbor, "LVS NAT")
    # A Harbor at its own Elastic IP that no DNS record names is reached there directly (master-master).
    named = {e.target for e in arch.edges}
    addressed = {instance for instance, _ in instance_of_eip.values()}
    for harbor in harbors:
        if harbor in addressed and harbor not in named and harbor not in vip_holders:
            arch.connect(CLIENTS, harbor, "HTTPS")
    tier = [a for kind in ("aws_db_instance", "aws_elasticache_replication_group")
            for a, _ in stack.resources(kind)]
    storage = _storage_of(stack)
    for harbor in harbors:
        for data in tier:  # in the Harbor's VPC (or region, in a VPC the stack was given)
            group = arch.nodes[data].group
            if group and arch.nodes[harbor].group[:len(group)] == group:
                arch.connect(harbor, data)
        for bucket in storage.get(harbor, ()):
            arch.connect(harbor, bucket)


def _storage_of(stack: SynthesizedStack) -> dict[str, list[str]]:
    """Instance -> the buckets its role may write anywhere in (its image storage), from the IAM policies."""
    documents = stack.doc.get("data", {}).get("aws_iam_policy_document", {})
    writes: dict[str, list[str]] = {}
    for _, body in stack.resources("aws_iam_role_policy"):
        role = stack.reference(body.get("role"), "aws_iam_role")
        policy = stack.reference(body.get("policy"), "aws_iam_policy_document") or "."
        document = documents.get(policy.split(".", 1)[1], {})
        for statement in document.get("statement", []):
            if "s3:PutObject" in statement.get("actions", []):
                for resource in statement.get("resources", []):
                    if resource.endswith(".arn}/*"):
                        writes.setdefault(role, []).extend(stack.references(resource, "aws_s3_bucket"))
    profiles = {address: stack.reference(body.get("role"), "aws_iam_role")
                for address, body in stack.resources("aws_iam_instance_profile")}
    found: dict[str, list[str]] = {}
    for address, body in stack.resources("aws_instance"):
        role = profiles.get(stack.reference(body.get("iam_instance_profile"), "aws_iam_instance_profile"))
        found[address] = list(dict.fromkeys(writes.get(role, [])))
    return found


def _replication(stack: SynthesizedStack, arch: Architecture, instance_of_eip) -> None:
    """An arrow from each Harbor whose boot runs the replication configurator to every peer it pushes to."""
    for address, body in stack.resources("aws_instance"):
        for argv in _boot_commands(body):
            if CONFIGURATOR_PATH not in argv or "--peer" not in argv or "--pull-only" in argv:
                continue
            for flag, value in zip(argv, argv[1:]):
                if flag != "--peer":
                    continue
                peer = stack.reference(value, "aws_instance") or instance_of_eip.get(
                    stack.reference(value, "aws_eip"), (None,))[0]
                if peer:
                    arch.connect(address, peer, "replication push\n(events + hourly full sync)",
                                 color=REPLICATION_COLOR, style="bold")


def _boot_commands(body: dict) -> list[list[str]]:
    """The ``runcmd`` argv lists of an instance's cloud-config user-data."""
    text = body.get("user_data") or ""
    if not text.startswith("#cloud-config"):
        return []
    config = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    return [[str(a) for a in command] for command in config.get("runcmd", []) if isinstance(command, list)]


# Rendering -------------------------------------------------------------------------------------------------

GRAPH_ATTRS = {"fontsize": "20", "pad": "0.4", "nodesep": "0.5", "ranksep": "1.0", "splines": "spline",
               "labelloc": "t"}


def render(arch: Architecture, out_base: Path, formats=FORMATS) -> list[Path]:
    """Draw ``arch`` into ``<out_base>.<format>`` for each format; returns the files."""
    from diagrams import Cluster, Diagram, Edge as DiagramEdge

    out_base.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harbor-ha-diagram-") as work:
        # diagrams writes "<filename>.<format>" relative to the working directory: give it a private one.
        base = Path(work) / out_base.name
        # Regions side by side (top to bottom within each) when there are several, else left to right.
        regions = sum(key.startswith("region:") for key in arch.groups)
        with Diagram(arch.title, filename=str(base), outformat=list(formats), show=False,
                     direction="TB" if regions > 1 else "LR",
                     graph_attr={**GRAPH_ATTRS, "nodesep": "1.0" if regions > 1 else "0.5"}):
            children: dict[tuple[str, ...], list[Node]] = {}
            for node in arch.nodes.values():
                children.setdefault(node.group, []).append(node)
            groups = _fold_empty_groups(arch, children)
            drawn: dict[str, object] = {}
            _draw_groups(groups, children, (), Cluster, drawn)
            for edge in arch.edges:
                drawn[edge.source] >> DiagramEdge(label=edge.label, style=edge.style, color=edge.color) \
                    >> drawn[edge.target]
        written = []
        for fmt in formats:
            target = out_base.with_suffix(f".{fmt}")
            produced = base.with_suffix(f".{fmt}")
            if fmt == "svg":
                target.write_text(self_contained_svg(produced.read_text()))
            else:
                target.write_bytes(produced.read_bytes())
            written.append(target)
    return written


def _fold_empty_groups(arch: Architecture, children) -> dict[str, Group]:
    """The groups to draw: graphviz draws no empty cluster, so an empty group (a subnet nothing is placed in)
    is named in the label and tooltip of its nearest non-empty enclosing group instead."""
    groups = {key: Group(g.key, g.label, list(g.addresses), g.parent) for key, g in arch.groups.items()}
    used = {key for path in children for key in path}
    for key, group in arch.groups.items():
        parent = group.parent
        while key not in used and parent and parent not in used:
            parent = arch.groups[parent].parent
        if key not in used and parent:
            groups[parent].label += f"\n{group.label} (empty)"
            groups[parent].addresses += group.addresses
    return groups


def _draw_groups(groups: dict[str, Group], children, path: tuple[str, ...], cluster_class, drawn: dict) -> None:
    """Nodes at ``path``, then each group one level deeper, recursively (group keys sorted: stable output)."""
    import importlib

    for node in children.get(path, []):
        module, name = node.icon.split(".")
        icon = getattr(importlib.import_module(f"diagrams.aws.{module}"), name)
        drawn[node.id] = icon(node.label, nodeid=node.id, tooltip="\n".join(node.addresses) or node.label)
    deeper = sorted({p[len(path)] for p in children if len(p) > len(path) and p[:len(path)] == path})
    for key in deeper:
        group = groups.get(key) or Group(key, key)
        with cluster_class(group.label, graph_attr={"tooltip": "\n".join(group.addresses) or group.label}) as c:
            c.dot.name = "cluster_" + re.sub(r"[^A-Za-z0-9_]", "_", key)
            _draw_groups(groups, children, (*path, key), cluster_class, drawn)


_IMAGE = re.compile(r'<image xlink:href="([^"]+)" width="([^"]+)" height="([^"]+)"')


def self_contained_svg(svg: str) -> str:
    """``svg`` with each icon's file path replaced by one embedded copy (``<defs>``, used by reference)."""
    icons: dict[str, str] = {}

    def use(match: re.Match) -> str:
        path, width, height = match.groups()
        key = f"{path}|{width}|{height}"
        if key not in icons:
            data = base64.b64encode(Path(path).read_bytes()).decode()
            icons[key] = (f'<image id="icon{len(icons)}" xlink:href="data:image/png;base64,{data}" '
                          f'width="{width}" height="{height}"/>')
        return f'<use xlink:href="#icon{list(icons).index(key)}" width="{width}" height="{height}"'

    body = re.sub(r'<image (xlink:href="[^"]+" width="[^"]+" height="[^"]+") preserveAspectRatio="[^"]*"',
                  lambda m: "<image " + m.group(1), svg)
    body = _IMAGE.sub(use, body)
    body = re.sub(r"<!-- Generated by graphviz[^>]*-->\n", "", body)  # names the graphviz release only
    defs = "<defs>\n" + "\n".join(icons.values()) + "\n</defs>\n"
    return re.sub(r"(<svg [^>]*>\n)", lambda m: m.group(1) + defs, body, count=1)


def draw(doc: dict, stack: str, out_dir: Path, formats=FORMATS) -> tuple[Architecture, list[Path]]:
    """Draw the synthesized ``stack`` (its JSON ``doc``) into ``out_dir/<stack>.<format>``."""
    arch = architecture(doc, f"harbor-ha {stack}")
    return arch, render(arch, Path(out_dir) / stack, formats)
