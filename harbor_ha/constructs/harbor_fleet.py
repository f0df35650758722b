"""The Harbor servers of active-active and active-standby: n EC2 instances spread over the AZs, sharing
one PostgreSQL (RDS), one Redis (ElastiCache) and one S3 bucket.

Every node installs the same Harbor release at first boot (``harbor_ha.harbor_boot``) and ends with the
same Harbor secrets: the first node to boot makes them and stores them in ONE Secrets Manager secret,
``harbor-ha/<name>/shared-secrets-<key id>``, which the nodes create themselves (Terraform does not know
the values, so they are never in state). The role may create and read that one name only. The key id in
the name keeps a redeployment from finding the secret of a destroyed deployment, whose key is gone;
``terraform destroy`` leaves that secret behind (delete it with ``aws secretsmanager delete-secret``).

The nodes share one database, so each starts Harbor under that database's schema-migration lock (start-harbor.sh):
one SSM parameter per database and Harbor release, ``/harbor-ha/<name>/schema-migration/<db resource id>/
harbor-<version>``, which the nodes create; only one new-release core migrates the schema, the others start
once it says ``done``. The role may read and write parameters under ``/harbor-ha/<name>/schema-migration/``
only. start-harbor.sh and shared-secrets.sh travel as objects of the shared bucket (``harbor-ha/boot/``, beside
Harbor's ``/registry``), which the nodes fetch at boot: user-data has no room for them. ``terraform destroy`` leaves them behind (a few bytes each; a new database never finds them, they are
named for its resource id): ``aws ssm delete-parameters`` removes them.

The fleet wires itself to the shared data tier: bucket read-write, database and Redis ports (ingress on
their groups, egress to the VPC on its own) and the two secrets it reads at boot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import base64

from harbor_ha.aws import (
    Construct, DataAwsIamPolicyDocumentStatementCondition, DataAwsIamPolicyDocumentStatement, S3Object,
)
from harbor_ha.cloud_init import CloudConfig
from harbor_ha.constructs.interfaces import Cache, Connectable, Database, ImageStorage, Network
from harbor_ha import rules
from harbor_ha.constructs.data_tier import require, require_rule, statement
from harbor_ha.constructs.harbor_host import HARBOR_PORTS, HarborHosts, check_common_props
from harbor_ha.constructs.static_ips import PlacedAddress
from harbor_ha.harbor_boot import (
    CARRIED_PREFIX, CARRIED_STEPS, carried_step, harbor_cloud_config, schema_lock_parameter, schema_lock_prefix,
)
from harbor_ha.harbor_release import DEFAULT_HARBOR_VERSION
from harbor_ha.health_report import health_report_part
from harbor_ha.node_reports import HEALTH_TAG, report_statement
from harbor_ha.harbor_config import ExternalDatabase, ExternalRedis, HarborConfig, S3Storage
from harbor_ha.rules import ROLE_TAG_KEY, SELF_SIGNED



@dataclass(frozen=True)
class HarborFleetProps:
    """The Harbor servers and the shared stores they use."""

    network: Network
    """A ``HarborNetwork`` (its ``vpc_id``, ``vpc_cidr`` and ``private_subnet_ids`` are used)."""
    storage: ImageStorage
    """The shared image bucket: a ``RegistryStorage``, or ``RegistryStorage.from_attributes``."""
    database: Database
    """The shared PostgreSQL: a ``HarborDatabase``, or ``HarborDatabase.from_attributes``."""
    cache: Cache
    """The shared Redis: a ``HarborCache``, or ``HarborCache.from_attributes``."""
    hostname: str
    """The DNS name clients use, or the VIP address; empty with ``vip_name``."""
    name: str = "harbor"
    """Prefix of names and tags; names the shared-secrets secret. Default ``harbor``."""
    count: int = 2
    """Harbor servers, 2 to 20. Default 2."""
    instance_type: str = "m6i.large"
    """EC2 instance type (x86_64). Default ``m6i.large``."""
    harbor_version: str = DEFAULT_HARBOR_VERSION
    """Harbor release, 2.13.0 or later. Default ``2.15.2``."""
    addresses: Sequence[PlacedAddress] = ()
    """One fixed private address per server (``StaticIps.harbor_addresses``). Default: none, server i in
    private subnet ``i % AZs`` with an address from DHCP."""
    ssh_cidrs: tuple[str, ...] = ()
    """Networks allowed SSH. Default none: no SSH rule (use SSM Session Manager)."""
    volume_gib: int = 100
    """Root volume in GiB, 20 to 16384. Default 100."""
    ami_id: str = ""
    """Image of every server (Amazon Linux 2023 x86_64); a new one replaces the servers (``harbor-ha up`` rolls
    them one at a time). Default: the AL2023 image current when a server is created, kept by it."""
    tls_certificate: str = SELF_SIGNED
    """``self-signed`` (one certificate for the whole fleet, made by the first node) or the ARN of a Secrets
    Manager secret holding ``{"certificate": PEM, "private_key": PEM}``. Default ``self-signed``."""
    extra_cloud_config: CloudConfig | None = None
    """Merged into every node's cloud-config, run after Harbor is up (e.g. keepalived). Default none."""
    extra_cloud_config_per_node: Sequence[CloudConfig] = ()
    """One more cloud-config per node, same order as the nodes. Default none."""
    instance_tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags on every instance (e.g. ``StaticIps.vip_tags``). Default none."""
    vip_name: str = ""
    """With no ``hostname``: the ``harbor-ha:vip`` tag of the Elastic IP whose address clients use, looked up
    at boot (servers that hold the VIP themselves cannot have it in their user-data). Default none."""
    public_addresses: bool = False
    """Give each server an automatic public IPv4 address: for servers placed in public subnets (the
    VIP holders of active-standby), which have no NAT route. Default False."""
    detailed_monitoring: bool = True
    """EC2 detailed (1-minute) monitoring. Default True."""
    ssm_access: bool = True
    """Attach AmazonSSMManagedInstanceCore for Session Manager. Default True."""

    def __post_init__(self) -> None:
        check_common_props(self)
        require_rule(self, "count", rules.FLEET_SIZE)
        require(bool(self.hostname or self.vip_name), "hostname", self.hostname,
                "a DNS name or the VIP address (or set vip_name)")
        require(not self.addresses or len(self.addresses) == self.count, "addresses", len(self.addresses),
                f"none or one per server ({self.count})")
        require(not self.extra_cloud_config_per_node or len(self.extra_cloud_config_per_node) == self.count,
                "extra_cloud_config_per_node", len(self.extra_cloud_config_per_node),
                f"none or one per server ({self.count})")


class HarborFleet(Construct):
    """Load-balancing targets (``LoadBalancerPairProps.targets``). Attributes: ``instance_ids``, ``private_ips``,
    ``target_ips`` (the fixed ``addresses`` when given, else ``private_ips``), ``security_group_id``, ``role``, ``admin_secret_arn``,
    ``shared_secrets_name``, ``shared_secrets_arn`` (ARN pattern: the first node creates the secret and
    Secrets Manager appends 6 characters), ``user_data`` (rendered cloud-config per node)."""

    def __init__(self, scope: Construct, id_: str, *, props: HarborFleetProps) -> None:
        super().__init__(scope, id_)
        network, database, cache = props.network, props.database, props.cache
        hosts = HarborHosts(self, "hosts", name=props.name, vpc_id=network.vpc_id,
                            instance_type=props.instance_type, volume_gib=props.volume_gib,
                            ssh_cidrs=props.ssh_cidrs, tls_certificate=props.tls_certificate,
                            detailed_monitoring=props.detailed_monitoring, ssm_access=props.ssm_access,
                            ami_id=props.ami_id)
        self._hosts = hosts
        self.role = hosts.role
        self.security_group_id = hosts.security_group_id
        self.admin_secret_arn = hosts.admin_secret_arn

        self.shared_secrets_name = f"harbor-ha/{props.name}/shared-secrets-{hosts.key.key_id}"
        # Secrets Manager appends "-" and 6 random characters to a secret's name in its ARN.
        self.shared_secrets_arn = hosts.arn("secretsmanager", f"secret:{self.shared_secrets_name}-??????")
        hosts.grant("shared-secrets", [
            DataAwsIamPolicyDocumentStatement(
                effect="Allow", actions=["secretsmanager:CreateSecret"], resources=[self.shared_secrets_arn],
                condition=[DataAwsIamPolicyDocumentStatementCondition(
                    test="StringEquals", variable="secretsmanager:KmsKeyId", values=[hosts.kms_key_arn])]),
            statement(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], [self.shared_secrets_arn]),
            statement(["kms:GenerateDataKey", "kms:Decrypt"], [hosts.kms_key_arn]),
        ])
        hosts.grant("schema-lock", [statement(["ssm:GetParameter", "ssm:PutParameter"],
                                              [hosts.arn("ssm", f"parameter{schema_lock_prefix(props.name)}/*")])])
        # Boot steps without room in user-data. Base64: a script's own ${...} would be Terraform template
        # syntax in a plain content string.
        for step in CARRIED_STEPS:
            hosts.needed_at_boot(S3Object(
                self, f"boot-{step}", bucket=props.storage.bucket_name, key=f"{CARRIED_PREFIX}/{step}",
                content_base64=base64.b64encode(carried_step(step).encode()).decode(),
                content_type="text/x-shellscript"))
        # The shared stores; every grant exists before a node boots (HarborHosts.add_instance waits for them).
        for policy in (props.storage.grant_read_write(self.role), database.grant_read_master_secret(self.role),
                       cache.grant_read_auth_token(self.role)):
            hosts.needed_at_boot(policy)
        database.allow_from(self)
        cache.allow_from(self)
        hosts.allow_egress_to("out-database", cidr=network.vpc_cidr, port=database.db_port,
                              description="Harbor database")
        hosts.allow_egress_to("out-redis", cidr=network.vpc_cidr, port=cache.redis_port, description="Harbor Redis")

        config = HarborConfig(
            harbor_version=props.harbor_version,
            external_database=ExternalDatabase(host=database.db_address, port=database.db_port,
                                               db_name=database.db_name, username=database.master_username),
            external_redis=ExternalRedis(host=cache.redis_endpoint, port=cache.redis_port),
            s3=S3Storage(region=props.storage.region, bucket=props.storage.bucket_name,
                         kms_key_arn=props.storage.kms_key_arn))
        environment = {**hosts.environment(), "HARBOR_HOSTNAME": props.hostname,
                       "VIP_NAME": props.vip_name,
                       "DB_SECRET_ARN": database.master_user_secret_arn,
                       "REDIS_SECRET_ARN": cache.auth_token_secret_arn,
                       "SHARED_SECRET_NAME": self.shared_secrets_name, "SHARED_SECRET_KMS_KEY": hosts.kms_key_arn,
                       "SCHEMA_LOCK_PARAMETER": schema_lock_parameter(props.name, database.resource_id,
                                                                      props.harbor_version)}
        zones = len(network.private_subnet_ids)
        self.user_data: list[str] = []
        instances = []
        hosts.grant("health-report", [report_statement(hosts.partition, props.name, "harbor", HEALTH_TAG)])

        def render(extra: CloudConfig) -> str:
            return harbor_cloud_config(config=config, environment=environment, fleet_bucket=props.storage.bucket_name,
                                       extra=extra).render()

        # Nodes without a configuration of their own share one rendering (synth time must not grow per node).
        shared = health_report_part(props.harbor_version).merge(props.extra_cloud_config or CloudConfig())
        same_for_all = None if props.extra_cloud_config_per_node else render(shared)
        for i in range(props.count):
            user_data = same_for_all or render(shared.merge(props.extra_cloud_config_per_node[i]))
            self.user_data.append(user_data)
            address = props.addresses[i] if props.addresses else None
            instances.append(hosts.add_instance(
                f"harbor-{i}", subnet_id=address.subnet_id if address else network.private_subnet_ids[i % zones],
                private_ip=address.private_ip if address else None, user_data=user_data,
                public_address=props.public_addresses, replace_on_new_user_data=True,
                tags={**props.instance_tags, ROLE_TAG_KEY: "harbor"}))
        self.instance_ids = [instance.id for instance in instances]
        self.private_ips = [instance.private_ip for instance in instances]
        # Fixed addresses are known before the instances exist: a load balancer's pool then waits for none.
        self.target_ips = [address.private_ip for address in props.addresses] or self.private_ips

    def allow_from(self, peer: Connectable, ports: Sequence[int] = HARBOR_PORTS) -> None:
        """Admit members of ``peer``'s security group (the load balancers) to ``ports``."""
        self._hosts.allow_from(peer, ports)

    def allow_from_cidrs(self, cidrs: Sequence[str], ports: Sequence[int] = HARBOR_PORTS) -> None:
        """Admit the networks ``cidrs`` to ``ports`` (active-standby: clients reach the nodes directly)."""
        self._hosts.allow_from_cidrs(cidrs, ports)
