"""Check a deployed stack against its intent with boto3, one line per check.

The resources to check come from the stack's Terraform state (``terraform show -json``), so ``verify``
knows exactly which instance, address, database, cache and bucket belong to the stack; the checks are
per resource type, so every stack is covered by the same code:

- instances: running, in one of the deployment's AZs, IMDSv2 required, the instance profile as deployed;
- VIP (Elastic IP association): the address is on the node it was given to or on a peer of the same role
  (same security groups), as keepalived may have moved it;
- RDS: available, Multi-AZ, encrypted; ElastiCache: available, automatic failover;
- S3: versioned, SSE-KMS, public access blocked;
- security groups: every live ingress rule is one the stack declares (nothing opened behind its back),
  and every declared rule is live.

Then the intent, derived from the settings alone and looked up in the target by the stack's tags
(``check_intent``): as many running Harbor servers, directors and VIP holders as the settings ask for, the
VIP, the database in the stack's own subnets, the cache with its nodes, a health check per replica. A
half-applied stack or a resource taken over by a neighbour fails there even when its state looks fine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable

from botocore.exceptions import ClientError

from harbor_ha.rules import DEPLOYMENT_TAG_KEY, ROLE_TAG_KEY, STACK_TAG_KEY, VIP_TAG_KEY
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stack_run import StackRun
from harbor_ha.target import Target


@dataclass(frozen=True)
class Check:
    ok: bool
    what: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.what}"


class Live:
    """boto3 clients for the target, per region."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._clients: dict = {}

    def __call__(self, service: str, region: str | None = None):
        region = region or self.target.region
        key = (service, region)
        if key not in self._clients:
            import boto3

            options: dict = {"region_name": region}
            if self.target.endpoint:
                from harbor_ha.target import LOCAL_ACCESS_KEY

                options.update(endpoint_url=self.target.endpoint, aws_access_key_id=LOCAL_ACCESS_KEY,
                               aws_secret_access_key=LOCAL_ACCESS_KEY)
            self._clients[key] = boto3.client(service, **options)
        return self._clients[key]


def state_resources(state: dict) -> list[dict]:
    """Managed resources of ``terraform show -json`` output, modules included."""
    found = []
    modules = [state.get("values", {}).get("root_module", {})]
    while modules:
        module = modules.pop()
        found += [r for r in module.get("resources", []) if r.get("mode") == "managed"]
        modules += module.get("child_modules", [])
    return found


def resource_region(values: dict, default: str) -> str:
    """The region of a resource of the state: its own attribute, its ARN's, or ``default``."""
    arn = values.get("arn") or ""
    parts = arn.split(":")
    return values.get("region") or (parts[3] if len(parts) > 3 and parts[3] else default)


def resources_by_type(state: dict) -> dict[str, list[dict]]:
    """The attribute values of the managed resources, by resource type."""
    by_type: dict[str, list[dict]] = {}
    for resource in state_resources(state):
        by_type.setdefault(resource["type"], []).append(resource["values"])
    return by_type


def check_state(state: dict, live: Live, zones: Iterable[str]) -> list[Check]:
    by_type = resources_by_type(state)
    checks: list[Check] = []
    for kind, check in CHECKS.items():
        for values in by_type.get(kind, []):
            try:
                checks += check(values, live, by_type, tuple(zones))
            except ClientError as error:  # e.g. deleted behind the stack's back: a failed check, not a crash
                checks.append(Check(False, f"{kind} {values.get('id')} can be read ({error})"))
    return checks + check_vips(live, by_type)


def _instances(live: Live, ids: list[str], region: str) -> dict[str, dict]:
    if not ids:
        return {}
    pages = live("ec2", region).describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceId"]: i for r in pages for i in r["Instances"]}


def check_instance(values: dict, live: Live, by_type: dict, zones: tuple) -> list[Check]:
    instance_id = values["id"]
    region = resource_region(values, live.target.region)
    instance = _instances(live, [instance_id], region)[instance_id]
    zone = instance["Placement"]["AvailabilityZone"]
    state = instance["State"]["Name"]
    tokens = instance.get("MetadataOptions", {}).get("HttpTokens")
    checks = [
        Check(state == "running", f"instance {instance_id} is running (state {state})"),
        Check(zone in zones and zone == values.get("availability_zone"),
              f"instance {instance_id} is in AZ {zone} (expected one of {', '.join(zones)})"),
        Check(tokens == "required", f"instance {instance_id} requires IMDSv2 (http_tokens {tokens})"),
    ]
    profile = values.get("iam_instance_profile")
    if profile:
        arn = instance.get("IamInstanceProfile", {}).get("Arn", "")
        checks.append(Check(arn.endswith(f"/{profile}"),
                            f"instance {instance_id} has instance profile {profile} (live: {arn or 'none'})"))
    return checks


def vip_associations(by_type: dict) -> list[tuple[str, str]]:
    """``(allocation id, instance id it was given to)`` of every Elastic IP the stack puts on an instance:
    ``aws_eip`` with ``instance`` or the ``harbor-ha:vip`` tag, and ``aws_eip_association``."""
    found = [(e["allocation_id"], e.get("instance") or "") for e in by_type.get("aws_eip", [])
             if e.get("instance") or VIP_TAG_KEY in (e.get("tags") or {})]
    for association in by_type.get("aws_eip_association", []):
        intended = association.get("instance_id") or ""
        for instance in by_type.get("aws_instance", []):
            if association.get("network_interface_id") == instance.get("primary_network_interface_id"):
                intended = instance["id"]
        found.append((association["allocation_id"], intended))
    return found


def vip_holder(ec2, allocation_id: str) -> tuple[str, str]:
    """``(public ip, instance id holding it or "")``."""
    addresses = ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"]
    address = addresses[0] if addresses else {}
    holder = address.get("InstanceId") or ""
    if not holder and address.get("NetworkInterfaceId"):
        interface = ec2.describe_network_interfaces(
            NetworkInterfaceIds=[address["NetworkInterfaceId"]])["NetworkInterfaces"][0]
        holder = interface.get("Attachment", {}).get("InstanceId", "")
    return address.get("PublicIp", allocation_id), holder


def _allocation_region(by_type: dict, allocation: str, default: str) -> str:
    """The region of an Elastic IP of the stack (master-master has one per region): the region in its ARN,
    else the region of the instance it was given to (found by availability zone), else ``default``."""
    for values in by_type.get("aws_eip", []):
        if values.get("allocation_id") != allocation:
            continue
        if (values.get("arn") or "").count(":") > 3:
            return resource_region(values, default)
        for instance in by_type.get("aws_instance", []):
            if instance.get("id") == values.get("instance") and instance.get("availability_zone"):
                return instance["availability_zone"][:-1]
    return default


def check_vips(live: Live, by_type: dict) -> list[Check]:
    checks = []
    for allocation, intended in vip_associations(by_type):
        shown, holder = vip_holder(live("ec2", _allocation_region(by_type, allocation, live.target.region)),
                                   allocation)
        peers = same_role(intended, by_type)
        checks.append(Check(bool(holder) and holder in peers,
                            f"VIP {shown} is associated with {holder or 'nothing'} (expected {intended} or a "
                            f"peer of the same role: {', '.join(sorted(peers - {intended})) or 'none'})"))
    return checks


def same_role(instance_id: str, by_type: dict) -> set[str]:
    """The instance and the stack's other instances with the same security groups (its keepalived peers)."""
    instances = {i["id"]: i for i in by_type.get("aws_instance", [])}
    if instance_id not in instances:
        return {instance_id} if instance_id else set()

    def groups(instance: dict) -> frozenset:
        return frozenset(instance.get("vpc_security_group_ids") or ())

    return {i for i, v in instances.items() if groups(v) == groups(instances[instance_id])}


def check_db_instance(values: dict, live: Live, by_type: dict, zones: tuple) -> list[Check]:
    name = values["identifier"]
    db = live("rds", resource_region(values, live.target.region)).describe_db_instances(
        DBInstanceIdentifier=name)["DBInstances"][0]
    return [
        Check(db["DBInstanceStatus"] == "available", f"database {name} is available ({db['DBInstanceStatus']})"),
        Check(bool(db.get("MultiAZ")), f"database {name} is Multi-AZ"),
        Check(bool(db.get("StorageEncrypted")), f"database {name} is encrypted at rest"),
    ]


def check_replication_group(values: dict, live: Live, by_type: dict, zones: tuple) -> list[Check]:
    name = values["id"]
    group = live("elasticache", resource_region(values, live.target.region)).describe_replication_groups(
        ReplicationGroupId=name)["ReplicationGroups"][0]
    return [
        Check(group["Status"] == "available", f"Redis replication group {name} is available ({group['Status']})"),
        Check(group.get("AutomaticFailover") == "enabled",
              f"Redis replication group {name} has automatic failover ({group.get('AutomaticFailover')})"),
    ]


def check_bucket(values: dict, live: Live, by_type: dict, zones: tuple) -> list[Check]:
    bucket = values["bucket"]
    s3 = live("s3", resource_region(values, live.target.region))
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status", "never enabled")
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        algorithms = {r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules}
    except ClientError:  # no encryption configuration
        algorithms = set()
    try:
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError:  # no public access block
        block = {}
    # SSE-KMS, except where the stack chose SSE-S3 (a log bucket: S3 delivers access logs only there).
    intended = {rule["apply_server_side_encryption_by_default"][0]["sse_algorithm"]
                for config in by_type.get("aws_s3_bucket_server_side_encryption_configuration", [])
                if config["bucket"] == bucket for rule in config["rule"]} or {"aws:kms"}
    wanted = {"AES256"} if intended == {"AES256"} else {"aws:kms", "aws:kms:dsse"}
    return [
        Check(status == "Enabled", f"bucket {bucket} is versioned ({status})"),
        Check(bool(algorithms) and algorithms <= wanted,
              f"bucket {bucket} is encrypted with {'SSE-S3' if wanted == {'AES256'} else 'SSE-KMS'} "
              f"({', '.join(sorted(algorithms)) or 'none'})"),
        Check(len(block) == 4 and all(block.values()), f"bucket {bucket} blocks all public access"),
    ]


def _rule_key(protocol, from_port, to_port, source) -> tuple:
    protocol = str(protocol)
    if protocol in ("-1", "all"):
        from_port = to_port = -1
        protocol = "-1"
    return protocol, int(from_port if from_port is not None else -1), int(to_port if to_port is not None else -1), source


def check_security_group(values: dict, live: Live, by_type: dict, zones: tuple) -> list[Check]:
    group_id = values["id"]
    name = values.get("name") or group_id
    declared = {_rule_key(r["protocol"], r["from_port"], r["to_port"], s)
                for r in values.get("ingress") or []
                for s in (r.get("cidr_blocks") or []) + (r.get("security_groups") or [])}
    for rule in by_type.get("aws_vpc_security_group_ingress_rule", []):
        if rule["security_group_id"] == group_id:
            source = rule.get("referenced_security_group_id") or rule.get("cidr_ipv4") or rule.get("prefix_list_id")
            declared.add(_rule_key(rule["ip_protocol"], rule.get("from_port"), rule.get("to_port"), source))
    for rule in by_type.get("aws_security_group_rule", []):
        if rule["security_group_id"] == group_id and rule["type"] == "ingress":
            for source in (rule.get("cidr_blocks") or []) + [rule.get("source_security_group_id")]:
                if source:
                    declared.add(_rule_key(rule["protocol"], rule["from_port"], rule["to_port"], source))
    group = live("ec2", resource_region(values, live.target.region)).describe_security_groups(
        GroupIds=[group_id])["SecurityGroups"][0]
    actual = set()
    for permission in group.get("IpPermissions", []):
        sources = [r["CidrIp"] for r in permission.get("IpRanges", [])] + \
                  [p["GroupId"] for p in permission.get("UserIdGroupPairs", [])] + \
                  [p["PrefixListId"] for p in permission.get("PrefixListIds", [])]
        for source in sources:
            actual.add(_rule_key(permission["IpProtocol"], permission.get("FromPort"), permission.get("ToPort"),
                                 source))
    names = {g["id"]: g.get("name") or g["id"] for g in by_type.get("aws_security_group", [])}

    def show(rules: set) -> str:
        return "; ".join(f"{p if p != '-1' else 'all'}{f' {f}-{t}' if f != -1 else ''} from {names.get(s, s)}"
                         for p, f, t, s in sorted(rules))

    extra, missing = actual - declared, declared - actual
    return [Check(not extra and not missing,
                  f"security group {name} admits exactly its declared ingress ({show(declared) or 'none'})"
                  + (f"; unexpected: {show(extra)}" if extra else "") + (f"; missing: {show(missing)}" if missing else ""))]


CHECKS: dict[str, Callable[..., list[Check]]] = {
    "aws_instance": check_instance,
    "aws_db_instance": check_db_instance,
    "aws_elasticache_replication_group": check_replication_group,
    "aws_s3_bucket": check_bucket,
    "aws_security_group": check_security_group,
}


def verify(stack: str, settings: HarborHaSettings | None = None, *, project_dir: str | os.PathLike | None = None,
           report: Callable[[str], None] | None = print) -> list[Check]:
    """Check the deployed ``stack``; ``report`` gets one line per check. A stack with nothing deployed
    is one failed check."""
    run = StackRun(stack, settings, project_dir, stream=False).ready()
    state = run.state()
    zones = run.settings.zones
    if stack == "master-master":  # its second Harbor lives in the second region's a and b zones
        zones += tuple(f"{run.settings.secondary_region}{z}" for z in "ab")
    live = Live(run.target)
    if state_resources(state):
        checks = check_state(state, live, zones) + check_intent(Intent.of(run.settings, stack), live,
                                                                deployment=run.settings.name, stack=stack)
    else:
        checks = [Check(False, f"stack {stack} is deployed on target {run.settings.target} (no resources in its "
                        "state)")]
    if report:
        for check in checks:
            report(check.line())
    return checks


@dataclass(frozen=True)
class Intent:
    """What a stack must hold in the target, derived from the settings alone (not from its code or state)."""

    harbor_servers: int
    load_balancers: int = 0
    vip_addresses: int = 0
    vip_holders: int = 0
    databases: int = 0
    database_subnets: int = 0
    caches: int = 0
    cache_nodes: int = 0
    replica_health_checks: int = 0
    regions: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: HarborHaSettings, stack: str) -> "Intent":
        zones = len(settings.private_subnet_ids) if settings.vpc_id else len(settings.zones)
        shared = dict(databases=1, database_subnets=zones, caches=1, cache_nodes=settings.cache_node_count,
                      vip_addresses=1, vip_holders=2, regions=(settings.region,))
        return {
            "active-active": lambda: cls(harbor_servers=settings.harbor_count, load_balancers=2, **shared),
            "active-standby": lambda: cls(harbor_servers=2, **shared),
            "master-slaves": lambda: cls(harbor_servers=1 + settings.replica_count,
                                         replica_health_checks=settings.replica_count, regions=(settings.region,)),
            "master-master": lambda: cls(harbor_servers=2, regions=(settings.region, settings.secondary_region)),
        }[stack]()


def check_intent(intent: Intent, live: Live, *, deployment: str, stack: str) -> list[Check]:
    """The target holds what ``intent`` says, found by the stack's tags: running Harbor servers and directors
    (per region in master-master), the VIP and its holders, the database in the stack's own subnets, the
    cache with its nodes, a health check per replica."""
    ours = [{"Name": f"tag:{DEPLOYMENT_TAG_KEY}", "Values": [deployment]},
            {"Name": f"tag:{STACK_TAG_KEY}", "Values": [stack]}]

    def tagged(tags) -> bool:
        tags = {t["Key"]: t["Value"] for t in tags or []}
        return tags.get(DEPLOYMENT_TAG_KEY) == deployment and tags.get(STACK_TAG_KEY) == stack

    def count(what: str, expected: int, actual: int) -> Check:
        return Check(expected == actual, f"{stack} has {expected} {what} (the target holds {actual})")

    checks, roles, holders, addresses, vpcs = [], [], 0, 0, set()
    for region in intent.regions:
        ec2 = live("ec2", region)
        running = [i for r in ec2.describe_instances(Filters=ours + [
            {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"] for i in r["Instances"]]
        region_roles = [{t["Key"]: t["Value"] for t in i.get("Tags", [])}.get(ROLE_TAG_KEY, "lb") for i in running]
        if len(intent.regions) > 1:
            checks.append(count(f"Harbor server in {region}", 1, region_roles.count("harbor")))
        roles += region_roles
        holders += sum(any(t["Key"] == VIP_TAG_KEY for t in i.get("Tags", [])) for i in running)
        addresses += len(ec2.describe_addresses(Filters=ours + [{"Name": "tag-key", "Values": [VIP_TAG_KEY]}])[
            "Addresses"])
        vpcs |= {v["VpcId"] for v in ec2.describe_vpcs(Filters=ours)["Vpcs"]}
    checks += [count("running Harbor servers", intent.harbor_servers, roles.count("harbor")),
               count("running load balancers (LVS directors)", intent.load_balancers, roles.count("lb")),
               count("VIP Elastic IPs", intent.vip_addresses, addresses),
               count("running VIP holders (keepalived peers)", intent.vip_holders, holders)]
    region = intent.regions[0]
    databases = [d for d in live("rds", region).describe_db_instances()["DBInstances"] if tagged(d.get("TagList"))]
    checks.append(count("databases", intent.databases, len(databases)))
    for db in databases:
        group = db.get("DBSubnetGroup") or {}
        subnets = {s["SubnetIdentifier"] for s in group.get("Subnets", [])}
        own = group.get("VpcId") in vpcs or not vpcs  # an existing VPC (vpc_id) carries no tags of the stack
        checks.append(Check(own and len(subnets) == intent.database_subnets,
                            f"database {db['DBInstanceIdentifier']} is in {intent.database_subnets} subnets of the "
                            f"stack's VPC (subnet group {group.get('DBSubnetGroupName')}: {len(subnets)} subnets "
                            f"in {group.get('VpcId')})"))
    cache = live("elasticache", region)
    groups = [g for g in cache.describe_replication_groups()["ReplicationGroups"]
              if tagged(cache.list_tags_for_resource(ResourceName=g["ARN"]).get("TagList"))]
    checks.append(count("Redis replication groups", intent.caches, len(groups)))
    for group in groups:
        checks.append(count(f"Redis nodes in {group['ReplicationGroupId']}", intent.cache_nodes,
                            len(group.get("MemberClusters", []))))
    if intent.replica_health_checks:
        route53 = live("route53", region)
        health = [c for c in route53.list_health_checks()["HealthChecks"] if tagged(route53.list_tags_for_resource(
            ResourceType="healthcheck", ResourceId=c["Id"])["ResourceTagSet"]["Tags"])]
        checks.append(count("replica health checks (pull endpoint)", intent.replica_health_checks, len(health)))
    return checks
