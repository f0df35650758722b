"""Where the local target closes the gaps of moto (5.2.5) that harbor-ha's stacks hit: the one place
that patches the emulator. Each gap is one function, named for what it makes work, with a test in
tests/test_moto_gaps.py that calls the emulator with boto3 and shows the call now works.

``apply_all()`` runs in the emulator process (harbor_ha.local.server) before it serves; every patch is
idempotent.
"""

from __future__ import annotations

import functools
import inspect
import os

_APPLIED: set[str] = set()


def _once(patch):
    @functools.wraps(patch)
    def run() -> None:
        if patch.__name__ not in _APPLIED:
            patch()
            _APPLIED.add(patch.__name__)
    return run


@_once
def register_replication_group_member_clusters() -> None:
    """ElastiCache: a replication group's member clusters (``<id>-001``, ``<id>-002`` ...) exist as cache
    clusters, reporting the group's encryption and security groups.

    moto lists them in ``MemberClusters`` but never registers them, so ``DescribeCacheClusters`` of a member
    answers CacheClusterNotFound, and the AWS provider, which reads the first member after creating a
    group, fails.
    """
    from moto.elasticache.models import CacheCluster, ElastiCacheBackend

    create_group = ElastiCacheBackend.create_replication_group

    @functools.wraps(create_group)
    def create_replication_group(self, **kwargs):
        group = create_group(self, **kwargs)
        for node_group in group.node_groups:
            for member in node_group["node_group_members"]:
                cluster = CacheCluster(
                    account_id=self.account_id, region_name=self.region_name,
                    cache_cluster_id=member["cache_cluster_id"], cache_node_type=group.cache_node_type,
                    replication_group_id=group.replication_group_id, az_mode="single-az",
                    preferred_availability_zone=member.get("preferred_availability_zone"), num_cache_nodes=1,
                    engine=group.engine, engine_version=group.engine_version,
                    cache_parameter_group_name=group.cache_parameter_group_name,
                    cache_subnet_group_name=group.cache_subnet_group_name,
                    transit_encryption_enabled=group.transit_encryption_enabled, network_type=group.network_type,
                    ip_discovery=group.ip_discovery, snapshot_name=None,
                    preferred_maintenance_window=group.preferred_maintenance_window, port=group.port,
                    notification_topic_arn=group.notification_topic_arn,
                    auto_minor_version_upgrade=group.auto_minor_version_upgrade,
                    snapshot_retention_limit=group.snapshot_retention_limit, snapshot_window=group.snapshot_window,
                    auth_token=None, outpost_mode=None, preferred_outpost_arn=None,
                    preferred_availability_zones=None, cache_security_group_names=group.cache_security_group_names,
                    security_group_ids=group.security_group_ids, tags=None, snapshot_arns=None,
                    preferred_outpost_arns=None, log_delivery_configurations=[], cache_node_ids_to_remove=None,
                    cache_node_ids_to_reboot=None)
                # The provider reads these of the group from its first member.
                cluster.auth_token_enabled = group.auth_token_enabled
                cluster.at_rest_encryption_enabled = group.at_rest_encryption_enabled
                cluster.security_groups = [{"SecurityGroupId": sg, "Status": "active"}
                                           for sg in group.security_group_ids or []]
                self.cache_clusters[cluster.cache_cluster_id] = cluster
        return group

    ElastiCacheBackend.create_replication_group = create_replication_group


@_once
def finish_replication_group_deletes() -> None:
    """ElastiCache: ``DeleteReplicationGroup`` completes. moto marks the group ``deleting`` forever, so the
    AWS provider's wait for it to disappear never ends; here the group and its member clusters are gone
    once the call answers (which is what AWS reports minutes later)."""
    from moto.elasticache.models import ElastiCacheBackend

    delete_group = ElastiCacheBackend.delete_replication_group

    @functools.wraps(delete_group)
    def delete_replication_group(self, replication_group_id, retain_primary_cluster):
        group = delete_group(self, replication_group_id, retain_primary_cluster)
        self.replication_groups.pop(replication_group_id, None)
        for node_group in group.node_groups:
            for member in node_group["node_group_members"]:
                self.cache_clusters.pop(member["cache_cluster_id"], None)
        return group

    ElastiCacheBackend.delete_replication_group = delete_replication_group


@_once
def implement_delete_cache_subnet_group() -> None:
    """ElastiCache: ``DeleteCacheSubnetGroup`` deletes the subnet group. moto does not implement it
    (HTTP 500), so a destroy fails at the end."""
    from moto.core.responses import EmptyResult
    from moto.elasticache.exceptions import CacheSubnetGroupNotFound
    from moto.elasticache.responses import ElastiCacheResponse

    def delete_cache_subnet_group(self) -> EmptyResult:
        name = self._get_param("CacheSubnetGroupName")
        if self.elasticache_backend.cache_subnet_groups.pop(name, None) is None:
            raise CacheSubnetGroupNotFound(name)
        return EmptyResult()

    ElastiCacheResponse.delete_cache_subnet_group = delete_cache_subnet_group


@_once
def implement_monitor_instances() -> None:
    """EC2: ``MonitorInstances`` / ``UnmonitorInstances`` (the provider's ``monitoring = true``) switch an
    instance's detailed monitoring. moto answers them with HTTP 500 (not implemented)."""
    from moto.core.responses import ActionResult
    from moto.ec2.responses.monitoring import Monitoring

    def set_monitoring(response: Monitoring, state: str) -> ActionResult:
        instance_ids = response._get_param("InstanceIds", [])
        response.error_on_dryrun()
        monitorings = []
        for instance in response.ec2_backend.get_multi_instances_by_id(instance_ids):
            instance.monitoring_state = state
            monitorings.append({"InstanceId": instance.id, "Monitoring": {"State": state}})
        return ActionResult({"InstanceMonitorings": monitorings})

    Monitoring.monitor_instances = lambda self: set_monitoring(self, "enabled")
    Monitoring.unmonitor_instances = lambda self: set_monitoring(self, "disabled")


@_once
def report_security_groups_of_interface_launches() -> None:
    """EC2: an instance launched with its security groups on the network interface specification
    (``NetworkInterfaces.1.Groups``, what the AWS provider sends for an instance with a fixed private IP)
    reports those groups in ``SecurityGroups``. moto leaves that list empty, so the provider reads
    ``vpc_security_group_ids = []`` and every later plan wants to add the groups again."""
    from moto.ec2.models.instances import InstanceBackend

    run_instances = InstanceBackend.run_instances

    @functools.wraps(run_instances)
    def run_instances_reporting_groups(self, *args, **kwargs):
        reservation = run_instances(self, *args, **kwargs)
        for instance in reservation.instances:
            primary = instance.nics.get(0)
            if not instance.security_groups and primary is not None:
                instance.security_groups = list(primary._group_set)
        return reservation

    InstanceBackend.run_instances = run_instances_reporting_groups


@_once
def mark_db_parameters_user_modified() -> None:
    """RDS: parameters set with ``ModifyDBParameterGroup`` are listed with ``Source = user`` and
    ``DescribeDBParameters`` honours its ``Source`` filter. moto omits both, so the provider, which reads
    the user-modified parameters, never sees its own (``rds.force_ssl`` ...) and plans them again."""
    from moto.core.responses import ActionResult
    from moto.rds.models import DBParameterGroup
    from moto.rds.responses import RDSResponse

    update = DBParameterGroup.update_parameters

    @functools.wraps(update)
    def update_parameters(self, new_parameters):
        update(self, [{**parameter, "Source": "user"} for parameter in new_parameters])

    describe = RDSResponse.describe_db_parameters

    @functools.wraps(describe)
    def describe_db_parameters(self):
        source = self.params.get("Source")
        result = describe(self)
        if source:
            result = ActionResult({"Parameters": [p for p in self.backend.describe_db_parameter_groups(
                {"db_parameter_group_name": self.params.get("DBParameterGroupName")})[0].parameters.values()
                if p.get("Source", "engine-default") == source]})
        return result

    DBParameterGroup.update_parameters = update_parameters
    RDSResponse.describe_db_parameters = describe_db_parameters


# Protocols whose rules carry port numbers; every other one (VRRP is 112) has none.
_PORTED_PROTOCOLS = {"tcp", "udp", "icmp", "icmpv6", "6", "17", "1", "58", "-1", "all"}


@_once
def accept_portless_protocol_rules() -> None:
    """EC2: a security group rule for a protocol without ports (keepalived's VRRP, IP protocol 112) is
    accepted. moto converts the missing FromPort with ``int(None)`` and answers HTTP 500."""
    from moto.ec2.models.security_groups import SecurityGroupRule

    init = SecurityGroupRule.__init__

    @functools.wraps(init)
    def init_portless(self, ec2_backend, ip_protocol, group_id, from_port, to_port, *args, **kwargs):
        portless = ip_protocol is not None and str(ip_protocol).lower() not in _PORTED_PROTOCOLS
        init(self, ec2_backend, "-1" if portless else ip_protocol, group_id, from_port, to_port, *args, **kwargs)
        if portless:
            self.ip_protocol = str(ip_protocol)

    SecurityGroupRule.__init__ = init_portless


@_once
def keep_rule_descriptions() -> None:
    """EC2: the description of a security group rule whose source is another security group or a prefix
    list is kept (``DescribeSecurityGroupRules``). moto keeps only descriptions of CIDR sources, so each
    plan wants to set them again."""
    from moto.ec2.models.security_groups import SecurityGroupRule

    init = SecurityGroupRule.__init__
    signature = inspect.signature(init)

    @functools.wraps(init)
    def init_keeping_prefix_list_description(self, *args, **kwargs):
        init(self, *args, **kwargs)
        prefix_list = signature.bind(self, *args, **kwargs).arguments.get("prefix_list_id") or {}
        self.prefix_list_description = prefix_list.get("Description")

    SecurityGroupRule.__init__ = init_keeping_prefix_list_description
    SecurityGroupRule.description = property(
        lambda self: self.ip_range.get("Description") or (self.source_group or {}).get("Description")
        or getattr(self, "prefix_list_description", None))


@_once
def load_aws_managed_policies() -> None:
    """IAM: AWS managed policies (``arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore`` ...) exist and
    can be attached. moto loads them only when asked (``MOTO_IAM_LOAD_MANAGED_POLICIES``); without them
    AttachRolePolicy answers NoSuchEntity."""
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"


@_once
def honour_secure_transport_condition() -> None:
    """S3: a bucket policy that denies requests without TLS (``aws:SecureTransport`` false) does not deny
    every request. moto ignores policy conditions, so such a Deny applied to all object reads, and the
    provider could not read back an object it had just written. Requests to the emulator arrive over
    loopback HTTP standing in for TLS, so those statements are left out when moto judges a request."""
    import json

    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def without_tls_denials(policy: dict) -> dict:
        statements = policy.get("Statement") or []
        statements = [statements] if isinstance(statements, dict) else statements
        kept = [s for s in statements if not (s.get("Effect") == "Deny" and "aws:SecureTransport" in
                                              json.dumps(s.get("Condition", {})))]
        return {**policy, "Statement": kept}

    def get_permission(self, action, resource):
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = without_tls_denials(json.loads(self.policy))
        return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission


@_once
def release_private_ips_of_terminated_instances() -> None:
    """EC2: a terminated instance gives its private addresses back to the subnet, as in AWS, so that its
    replacement can launch at the same fixed address. moto keeps them taken until the Python object is
    collected, and RunInstances at that address fails with HTTP 500 ("IP already in use")."""
    from moto.ec2.models.instances import Instance

    terminate = Instance.terminate

    @functools.wraps(terminate)
    def terminate_releasing_addresses(self):
        state = terminate(self)
        subnet = self.ec2_backend.get_subnet(self.subnet_id) if self.subnet_id else None
        for address in list(self._private_ips) if subnet else []:
            subnet.del_subnet_ip(address)
        self._private_ips.clear()
        return state

    Instance.terminate = terminate_releasing_addresses


@_once
def give_db_instances_unique_resource_ids() -> None:
    """RDS: every DB instance gets its own ``DbiResourceId`` (``db-`` and 26 characters, as AWS makes them).
    moto gives all the same one, and the AWS provider tracks ``aws_db_instance`` by it: a stack's destroy
    then deleted another stack's database."""
    import secrets

    from moto.rds.models import DBInstance

    init = DBInstance.__init__
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

    @functools.wraps(init)
    def init_with_own_resource_id(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.dbi_resource_id = "db-" + "".join(secrets.choice(alphabet) for _ in range(26))

    DBInstance.__init__ = init_with_own_resource_id


@_once
def refuse_duplicate_db_subnet_groups() -> None:
    """RDS: ``CreateDBSubnetGroup`` of a name that exists answers DBSubnetGroupAlreadyExists, as AWS does. moto
    replaced the existing group, so a second stack took over the first one's database subnets."""
    from moto.rds.exceptions import RDSClientError
    from moto.rds.models import RDSBackend

    create = RDSBackend.create_subnet_group

    @functools.wraps(create)
    def create_subnet_group(self, subnet_name, *args, **kwargs):
        if subnet_name in self.subnet_groups:
            raise RDSClientError("DBSubnetGroupAlreadyExists", f"The DB subnet group '{subnet_name}' already exists.")
        return create(self, subnet_name, *args, **kwargs)

    RDSBackend.create_subnet_group = create_subnet_group


@_once
def keep_performance_insights() -> None:
    """RDS: ``CreateDBInstance`` / ``ModifyDBInstance`` keep Performance Insights (enabled, its KMS key and
    retention) and ``DescribeDBInstances`` reports them. moto drops them, so the provider, which reads
    ``performance_insights_enabled`` back, would plan to turn them on after every apply."""
    from moto.rds.models import DBInstance

    def keep(instance, values: dict) -> None:
        if values.get("enable_performance_insights") is not None:
            instance.performance_insights_enabled = bool(values["enable_performance_insights"])
        for key in ("performance_insights_kms_key_id", "performance_insights_retention_period"):
            if values.get(key) is not None:
                setattr(instance, key, values[key])

    create = DBInstance.__init__

    @functools.wraps(create)
    def init(self, *args, **kwargs):
        create(self, *args, **kwargs)
        self.performance_insights_enabled = False
        keep(self, kwargs)

    update = DBInstance.update

    @functools.wraps(update)
    def update_keeping(self, **db_kwargs):
        result = update(self, **db_kwargs)
        keep(self, db_kwargs)
        return result

    DBInstance.__init__ = init
    DBInstance.update = update_keeping


@_once
def accept_query_log_group_arn() -> None:
    """Route 53: ``CreateQueryLoggingConfig`` accepts a log group's ARN as the AWS provider passes it
    (``aws_cloudwatch_log_group.arn``, without the ``:*`` suffix). moto finds the group only under
    ``<arn>:*`` and answers NoSuchCloudWatchLogsLogGroup otherwise. The configuration keeps the ARN as
    given, so that the provider reads back what it wrote."""
    from moto.route53.models import Route53Backend

    create = Route53Backend.create_query_logging_config

    @functools.wraps(create)
    def create_with_either_arn(self, hosted_zone_id, log_group_arn):
        given = log_group_arn
        if log_group_arn and not log_group_arn.endswith(":*"):
            log_group_arn += ":*"
        config = create(self, hosted_zone_id, log_group_arn)
        config.cloud_watch_logs_log_group_arn = given
        return config

    Route53Backend.create_query_logging_config = create_with_either_arn


@_once
def read_logging_target_policies_with_any_principal() -> None:
    """S3: ``PutBucketLogging`` accepts a target bucket whose policy, beside the statement that lets S3's
    log delivery write, has a statement for every principal (``"Principal": "*"``, e.g. a TLS-only deny).
    moto reads each statement's principal as an object and answers HTTP 500 on the string ``"*"``."""
    import json
    from types import SimpleNamespace

    from moto.s3.models import FakeBucket

    check = FakeBucket._log_permissions_enabled_policy

    def check_service_statements(target_bucket, target_prefix):
        policy = target_bucket.policy
        if not policy:
            return False
        document = json.loads(policy.decode() if isinstance(policy, bytes) else policy)
        statements = document.get("Statement", [])
        document["Statement"] = [s for s in ([statements] if isinstance(statements, dict) else statements)
                                 if isinstance(s.get("Principal"), dict)]
        return check(SimpleNamespace(policy=json.dumps(document).encode(), partition=target_bucket.partition,
                                     name=target_bucket.name), target_prefix)

    FakeBucket._log_permissions_enabled_policy = staticmethod(check_service_statements)


PATCHES = (register_replication_group_member_clusters, honour_secure_transport_condition, finish_replication_group_deletes,
           implement_delete_cache_subnet_group,
           implement_monitor_instances, report_security_groups_of_interface_launches,
           accept_portless_protocol_rules, keep_rule_descriptions, load_aws_managed_policies,
           mark_db_parameters_user_modified, release_private_ips_of_terminated_instances,
           give_db_instances_unique_resource_ids, refuse_duplicate_db_subnet_groups, keep_performance_insights,
           accept_query_log_group_arn, read_logging_target_policies_with_any_principal)


def apply_all() -> None:
    """Apply every patch of this module (idempotent)."""
    for patch in PATCHES:
        patch()
