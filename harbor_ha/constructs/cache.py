"""The shared Redis of Harbor (sessions, job queue, cache): an ElastiCache replication group.

Cluster mode disabled, one shard with a primary and >= 1 replica in other AZs, automatic failover:
Harbor supports neither Redis Cluster mode nor ElastiCache Serverless. Encrypted at rest (own KMS key)
and in transit (Harbor >= 2.13 speaks TLS to Redis), with an AUTH token.

The AUTH token is generated once by Secrets Manager and kept in a secret that the Harbor nodes read at
boot. ElastiCache has no managed form of it, so Terraform's state holds it (the replication group's
``auth_token``): the state backend must be encrypted and access to it restricted. Synth output holds
only references, never the token.
"""

from __future__ import annotations

from dataclasses import dataclass

from harbor_ha.aws import (
    Construct, DataAwsSecretsmanagerSecretVersion, ElasticacheReplicationGroup, ElasticacheSubnetGroup, IamRole,
    IamRolePolicy, SecretsmanagerSecret, SecretsmanagerSecretVersion, TerraformResourceLifecycle,
    VpcSecurityGroupIngressRule,
)
from harbor_ha.constructs.checkov import skip_check
from harbor_ha.constructs.interfaces import Connectable
from harbor_ha.constructs.data_tier import (
    ClosedPort, ExistingStore, customer_key, ephemeral_random_password, grant, require, require_rule,
    require_whole, secret_reader_statements,
)
from harbor_ha import rules

REDIS_PORT = 6379


@dataclass(frozen=True)
class HarborCacheProps:
    name: str
    """Deployment name: the replication group is ``<name>-redis``."""
    vpc_id: str
    """VPC of the cache's security group."""
    subnet_ids: tuple[str, ...]
    """Private subnets in at least 2 AZs for the cache subnet group (Multi-AZ)."""
    node_type: str = "cache.t4g.medium"
    """ElastiCache node type. Default ``cache.t4g.medium``."""
    node_count: int = 2
    """Nodes in the shard, primary included, 2-6 (failover needs a replica). Default 2."""
    engine_version: str = "7.1"
    """Redis engine version. Default ``7.1``."""
    snapshot_retention_days: int = 1
    """Days of daily snapshots to keep, 0-35 (0 turns snapshots off). Default 1."""

    def __post_init__(self) -> None:
        require_rule(self, "name", rules.CACHE_NAME)
        require(len(self.subnet_ids) >= 2, "subnet_ids", self.subnet_ids, "at least 2 subnets in distinct AZs")
        # ElastiCache allows a primary and up to 5 replicas per shard.
        require_rule(self, "node_count", rules.CACHE_NODES)
        require_whole(self, "snapshot_retention_days", 0, 35)
        require_rule(self, "node_type", rules.CACHE_NODE_TYPE)
        require_rule(self, "engine_version", rules.REDIS_VERSION)


class HarborCache(Construct):
    """Attributes: ``redis_endpoint`` (primary endpoint address), ``redis_port``, ``auth_token_secret_arn``
    (a plain-string secret), ``security_group_id``, ``kms_key_arn``.

    The state backend of a stack holding this construct must be encrypted: Terraform keeps the AUTH token
    in state (see the module docstring)."""

    def __init__(self, scope: Construct, id_: str, *, props: HarborCacheProps) -> None:
        super().__init__(scope, id_)
        group_id = f"{props.name}-redis"
        self.redis_port = REDIS_PORT
        self.key = customer_key(self, alias=group_id, description=f"{props.name}: Harbor Redis and its AUTH token")
        self.kms_key_arn = self.key.arn
        self._port = ClosedPort(self, name=group_id, vpc_id=props.vpc_id, port=REDIS_PORT, service="Harbor Redis")
        self.security_group_id = self._port.group.id

        secret = SecretsmanagerSecret(self, "auth-token", name_prefix=f"{group_id}-auth-token-",
                                      kms_key_id=self.key.arn,
                                      description=f"{props.name}: AUTH token of the Harbor Redis")
        # ElastiCache rejects some punctuation (@ " /) in AUTH tokens: letters and digits only, 64 of them.
        generated = ephemeral_random_password(self, "auth-token-generator", password_length=64,
                                              exclude_punctuation=True, include_space=False)
        # Written once through a write-only argument (a deployment whose token was a plain secret_string keeps
        # it), then read back for the replication group: the state holds it only there and in that read, both
        # marked sensitive.
        version = SecretsmanagerSecretVersion(self, "auth-token-value", secret_id=secret.id,
                                              secret_string_wo=generated, secret_string_wo_version=1,
                                              lifecycle=TerraformResourceLifecycle(
                                                  ignore_changes=["secret_string", "secret_string_wo_version"]))
        token = DataAwsSecretsmanagerSecretVersion(self, "auth-token-read", secret_id=secret.id, depends_on=[version])
        self.auth_token_secret_arn = secret.arn
        skip_check(secret, "CKV2_AWS_57", "ElastiCache keeps one AUTH token that every Harbor node holds in its "
                   "harbor.yml: it is changed by a planned rollout, not by a rotation Lambda")

        subnets = ElasticacheSubnetGroup(self, "subnets", name=group_id, subnet_ids=list(props.subnet_ids),
                                         description=f"{props.name}: Harbor Redis, private subnets")
        group = ElasticacheReplicationGroup(
            self, "replication-group", replication_group_id=group_id,
            description=f"{props.name}: Harbor Redis", engine="redis", engine_version=props.engine_version,
            node_type=props.node_type, port=REDIS_PORT, cluster_mode="disabled", num_node_groups=1,
            replicas_per_node_group=props.node_count - 1, automatic_failover_enabled=True, multi_az_enabled=True,
            subnet_group_name=subnets.name, security_group_ids=[self.security_group_id],
            at_rest_encryption_enabled="true", kms_key_id=self.key.arn, transit_encryption_enabled=True,
            auth_token=token.secret_string, auto_minor_version_upgrade="true",
            snapshot_retention_limit=props.snapshot_retention_days)
        self.redis_endpoint = group.primary_endpoint_address

    @staticmethod
    def from_attributes(scope: Construct, id_: str, *, redis_endpoint: str, auth_token_secret_arn: str,
                        security_group_id: str, redis_port: int = REDIS_PORT,
                        secret_kms_key_arn: str = "") -> "ExistingCache":
        """An existing Redis (cluster mode disabled, in-transit encryption and an AUTH token: what Harbor
        supports), e.g. an ElastiCache replication group of your own, for ``HarborFleetProps.cache``, in the
        fleet's VPC: nothing of it is created or changed but an ingress rule on ``security_group_id`` per
        ``allow_from``. Any
        argument but ``redis_port`` may be a Terraform reference. ``redis_endpoint``: the primary endpoint's
        address; ``auth_token_secret_arn``: a Secrets Manager secret holding the AUTH token as a plain string,
        encrypted with ``secret_kms_key_arn`` (default empty: the AWS managed key). Default port 6379."""
        return ExistingCache(scope, id_, redis_endpoint=redis_endpoint, redis_port=redis_port,
                             auth_token_secret_arn=auth_token_secret_arn, security_group_id=security_group_id,
                             secret_kms_key_arn=secret_kms_key_arn)

    def allow_from(self, peer: Connectable) -> VpcSecurityGroupIngressRule:
        """Admit members of ``peer``'s security group to the Redis port."""
        return self._port.allow_from(peer)

    def grant_read_auth_token(self, role: IamRole) -> IamRolePolicy:
        """Let ``role`` read the AUTH token secret (a plain string)."""
        return grant(self, role, "read-auth-token", secret_reader_statements(self.auth_token_secret_arn,
                                                                              self.kms_key_arn))


class ExistingCache(ExistingStore):
    """A Redis made outside harbor-ha (``HarborCache.from_attributes``), a ``Cache``. Attributes:
    ``redis_endpoint``, ``redis_port``, ``auth_token_secret_arn``, ``security_group_id``."""

    service = "Harbor Redis"
    host_attribute, port_attribute, secret_attribute = "redis_endpoint", "redis_port", "auth_token_secret_arn"
    redis_endpoint: str
    redis_port: int
    auth_token_secret_arn: str

    def grant_read_auth_token(self, role: IamRole) -> IamRolePolicy:
        """Let ``role`` read the AUTH token secret."""
        return self.grant_read_secret(role, "read-auth-token")
