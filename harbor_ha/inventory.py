"""What one stack of a deployment has in the target, found by its tags and names rather than its Terraform
state: every resource tagged ``harbor-ha:deployment = <name>`` and ``harbor-ha:stack = <stack>``, the KMS
aliases and the secrets that carry the stack's name prefix (neither is tagged: an alias cannot be, the
shared-secrets secret is made by a node at boot, ``harbor-ha/<prefix>/...``).

It is what ``up`` compares with the state after a crash (``harbor_ha.recovery``) and what ``down`` reports as
left behind. Each ``Found`` names the Terraform type and the id ``terraform import`` takes, the key that ties
it to the stack's configuration (its ``Name`` tag, identifier, description or name prefix) and, for what AWS
keeps by design after a delete (KMS keys pending deletion, secrets scheduled for deletion, terminated
instances), why it is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from botocore.exceptions import ClientError

from harbor_ha.rules import DEPLOYMENT_TAG_KEY, STACK_TAG_KEY
from harbor_ha.verify import Live

# Terraform's name_prefix / bucket_prefix append a 26-character unique id (a timestamp and a counter).
_UNIQUE_SUFFIX = re.compile(r"^(?P<prefix>.+?)\d{24}[0-9a-f]{2}$")
# Terraform type -> the EC2 call that lists it (with tag filters), its result list and the id key. Instances come
# first: their root volumes are found through them.
EC2_LISTS = {
    "aws_instance": ("describe_instances", "Reservations", "InstanceId"),
    "aws_vpc": ("describe_vpcs", "Vpcs", "VpcId"), "aws_subnet": ("describe_subnets", "Subnets", "SubnetId"),
    "aws_security_group": ("describe_security_groups", "SecurityGroups", "GroupId"),
    "aws_eip": ("describe_addresses", "Addresses", "AllocationId"),
    "aws_internet_gateway": ("describe_internet_gateways", "InternetGateways", "InternetGatewayId"),
    "aws_route_table": ("describe_route_tables", "RouteTables", "RouteTableId"),
    "aws_nat_gateway": ("describe_nat_gateways", "NatGateways", "NatGatewayId"),
    "aws_vpc_endpoint": ("describe_vpc_endpoints", "VpcEndpoints", "VpcEndpointId"),
    "aws_ebs_volume": ("describe_volumes", "Volumes", "VolumeId"),
    "aws_flow_log": ("describe_flow_logs", "FlowLogs", "FlowLogId"),
}
# The calls that name their filters in the singular.
SINGULAR_FILTER = ("aws_nat_gateway", "aws_flow_log")
# What EC2 lists for a while after its deletion.
EC2_KEPT = {("aws_instance", "terminated"): "a terminated instance stays listed for about an hour",
            ("aws_instance", "shutting-down"): "terminating",
            ("aws_nat_gateway", "deleted"): "a deleted NAT gateway stays listed for about an hour",
            ("aws_nat_gateway", "deleting"): "being deleted",
            ("aws_vpc_endpoint", "deleted"): "a deleted VPC endpoint stays listed for a while",
            ("aws_vpc_endpoint", "deleting"): "being deleted"}


@dataclass(frozen=True)
class Found:
    """One resource of the stack in the target."""

    kind: str
    """Terraform resource type (``aws_vpc`` ...)."""
    import_id: str
    """What ``terraform import`` takes for it (and what AWS calls it)."""
    region: str
    key: str
    """What ties it to the configuration: Name tag, identifier, description, name or name prefix."""
    arn: str = ""
    kept: str = ""
    """Why AWS keeps it after its deletion, or ``""`` for a live resource."""
    made_by_node: bool = False
    """Made by a node at boot (Harbor's shared secrets), not by Terraform."""

    def describe(self) -> str:
        return f"{self.kind} {self.import_id} ({self.key}, {self.region})"


def name_prefix_of(name: str) -> str:
    """The ``name_prefix`` Terraform made ``name`` from, or ``name`` itself."""
    match = _UNIQUE_SUFFIX.match(name)
    return match.group("prefix") if match else name


class Inventory:
    """The stack's resources in ``regions`` of the target that ``live`` (``harbor_ha.verify.Live``) reaches."""

    def __init__(self, live, *, deployment: str, stack: str, prefix: str, regions: tuple[str, ...]) -> None:
        self.live, self.deployment, self.stack, self.prefix, self.regions = live, deployment, stack, prefix, regions

    def _ours(self, tags) -> bool:
        if isinstance(tags, list):  # [{Key, Value}], KMS: [{TagKey, TagValue}]
            tags = {t.get("Key", t.get("TagKey")): t.get("Value", t.get("TagValue")) for t in tags}
        return (tags or {}).get(DEPLOYMENT_TAG_KEY) == self.deployment and (tags or {}).get(STACK_TAG_KEY) == self.stack

    def all(self) -> list[Found]:
        found = list(self._global())
        for region in self.regions:
            for lister in (self._ec2, self._rds, self._elasticache, self._kms, self._secrets):
                found += lister(region)
        return found

    def _ec2(self, region: str) -> Iterator[Found]:
        ec2 = self.live("ec2", region)
        ours = [{"Name": f"tag:{DEPLOYMENT_TAG_KEY}", "Values": [self.deployment]},
                {"Name": f"tag:{STACK_TAG_KEY}", "Values": [self.stack]}]
        roots = set()
        for kind, (call, items, key) in EC2_LISTS.items():
            filters = "Filter" if kind in SINGULAR_FILTER else "Filters"
            listed = getattr(ec2, call)(**{filters: ours})[items]
            if kind == "aws_instance":
                listed = [i for r in listed for i in r["Instances"]]
                # An instance's root volume carries the stack's tags but is part of it (deleted with it).
                roots |= {m["Ebs"]["VolumeId"] for i in listed for m in i.get("BlockDeviceMappings", [])
                          if m.get("Ebs", {}).get("DeleteOnTermination")}
            for item in listed:
                if item[key] in roots or not self._ours(item.get("Tags")):  # the emulator may ignore a filter
                    continue
                state = (item.get("State") or {}).get("Name") if kind == "aws_instance" else item.get("State")
                # A security group without a Name tag (the data stores' groups) is known by its group name.
                name = {t["Key"]: t["Value"] for t in item.get("Tags", [])}.get("Name", item.get("GroupName", ""))
                yield Found(kind, item[key], region, name, kept=EC2_KEPT.get((kind, str(state).lower()), ""))

    def _tagged(self, client, arn: str, call: str = "list_tags_for_resource", **key) -> bool:
        try:
            response = getattr(client, call)(**(key or {"ResourceName": arn}))
        except ClientError:  # deleted meanwhile
            return False
        return self._ours(response.get("TagList") or response.get("Tags")
                          or response.get("InstanceProfile", {}).get("Tags")
                          or response.get("ResourceTagSet", {}).get("Tags") or [])

    def _rds(self, region: str) -> Iterator[Found]:
        rds = self.live("rds", region)
        for db in rds.describe_db_instances()["DBInstances"]:
            if self._ours(db.get("TagList")):
                yield Found("aws_db_instance", db["DBInstanceIdentifier"], region, db["DBInstanceIdentifier"],
                            db["DBInstanceArn"])
        for group in rds.describe_db_subnet_groups()["DBSubnetGroups"]:
            if self._tagged(rds, group["DBSubnetGroupArn"]):
                yield Found("aws_db_subnet_group", group["DBSubnetGroupName"], region, group["DBSubnetGroupName"],
                            group["DBSubnetGroupArn"])
        for group in rds.describe_db_parameter_groups()["DBParameterGroups"]:
            if self._tagged(rds, group["DBParameterGroupArn"]):
                name = group["DBParameterGroupName"]
                yield Found("aws_db_parameter_group", name, region, name_prefix_of(name), group["DBParameterGroupArn"])

    def _elasticache(self, region: str) -> Iterator[Found]:
        cache = self.live("elasticache", region)
        for group in cache.describe_replication_groups()["ReplicationGroups"]:
            if self._tagged(cache, group["ARN"]):
                yield Found("aws_elasticache_replication_group", group["ReplicationGroupId"], region,
                            group["ReplicationGroupId"], group["ARN"])
        for group in cache.describe_cache_subnet_groups()["CacheSubnetGroups"]:
            if self._tagged(cache, group["ARN"]):
                yield Found("aws_elasticache_subnet_group", group["CacheSubnetGroupName"], region,
                            group["CacheSubnetGroupName"], group["ARN"])

    def _kms(self, region: str) -> Iterator[Found]:
        kms = self.live("kms", region)
        ours = set()
        for page in kms.get_paginator("list_keys").paginate():
            for key in page["Keys"]:
                if not self._tagged(kms, key["KeyArn"], "list_resource_tags", KeyId=key["KeyId"]):
                    continue
                meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
                ours.add(key["KeyId"])
                yield Found("aws_kms_key", key["KeyId"], region, meta.get("Description", ""), key["KeyArn"],
                            kept=f"AWS deletes it on {meta['DeletionDate']:%Y-%m-%d} (recoverable until then)"
                            if meta.get("KeyState") == "PendingDeletion" else "")
        for page in kms.get_paginator("list_aliases").paginate():
            for alias in page["Aliases"]:
                if alias.get("TargetKeyId") in ours:
                    yield Found("aws_kms_alias", alias["AliasName"], region, alias["AliasName"], alias["AliasArn"])

    def _secrets(self, region: str) -> Iterator[Found]:
        secrets = self.live("secretsmanager", region)
        for page in secrets.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
            for secret in page["SecretList"]:
                node_made = secret["Name"].startswith(f"harbor-ha/{self.prefix}/")
                if not (node_made or self._ours(secret.get("Tags"))):
                    continue
                deleted = secret.get("DeletedDate")
                yield Found("aws_secretsmanager_secret", secret["ARN"], region,
                            secret["Name"] if node_made else name_prefix_of(secret["Name"]), secret["ARN"],
                            kept="scheduled for deletion by AWS (recoverable until then)" if deleted else "",
                            made_by_node=node_made)

    def _global(self) -> Iterator[Found]:
        region = self.regions[0]
        iam = self.live("iam", region)
        for page in iam.get_paginator("list_roles").paginate():
            for role in page["Roles"]:
                if self._tagged(iam, role["Arn"], "list_role_tags", RoleName=role["RoleName"]):
                    yield Found("aws_iam_role", role["RoleName"], "global", name_prefix_of(role["RoleName"]),
                                role["Arn"])
        for page in iam.get_paginator("list_instance_profiles").paginate():
            for profile in page["InstanceProfiles"]:
                name = profile["InstanceProfileName"]
                # GetInstanceProfile has the tags on AWS and on the emulator (which lacks ListInstanceProfileTags).
                if self._tagged(iam, profile["Arn"], "get_instance_profile", InstanceProfileName=name):
                    yield Found("aws_iam_instance_profile", name, "global", name_prefix_of(name), profile["Arn"])
        s3 = self.live("s3", region)
        for bucket in s3.list_buckets()["Buckets"]:
            try:
                tags = s3.get_bucket_tagging(Bucket=bucket["Name"])["TagSet"]
            except ClientError:  # no tags
                continue
            if self._ours(tags):
                yield Found("aws_s3_bucket", bucket["Name"], "global", name_prefix_of(bucket["Name"]),
                            f"arn:aws:s3:::{bucket['Name']}")
        route53 = self.live("route53", region)
        for zone in route53.list_hosted_zones()["HostedZones"]:
            zone_id = zone["Id"].split("/")[-1]
            if self._tagged(route53, "", ResourceType="hostedzone", ResourceId=zone_id):
                yield Found("aws_route53_zone", zone_id, "global", zone["Name"].rstrip("."))
        for check in route53.list_health_checks()["HealthChecks"]:
            tags = route53.list_tags_for_resource(ResourceType="healthcheck", ResourceId=check["Id"])
            if self._ours(tags["ResourceTagSet"]["Tags"]):
                name = {t["Key"]: t["Value"] for t in tags["ResourceTagSet"]["Tags"]}.get("Name", "")
                yield Found("aws_route53_health_check", check["Id"], "global", name)


def stack_inventory(run) -> Inventory:
    """The inventory of a ``harbor_ha.stack_run.StackRun``'s stack."""
    settings = run.settings
    regions = (settings.region,) + ((settings.secondary_region,) if run.stack == "master-master" else ())
    return Inventory(Live(run.target), deployment=settings.name, stack=run.stack,
                     prefix=settings.resource_prefix, regions=regions)
