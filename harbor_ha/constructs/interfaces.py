"""What a construct needs of another, as typing protocols: a prop names one of these, not a class, so the
constructs of harbor-ha satisfy them and so does a user's own object (an existing database imported with
``HarborDatabase.from_attributes``, a network built some other way). Every attribute may be a Terraform
reference (a token such as ``vpc.id``) unless its documentation says it must be known at synth time."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from harbor_ha.aws import Construct, IamRole, IamRolePolicy, S3BucketLoggingA, TerraformResource
from harbor_ha.aws import VpcSecurityGroupIngressRule


@runtime_checkable
class Connectable(Protocol):
    """Anything that owns a security group: the Harbor fleet, the LB pair, a user's own construct."""

    security_group_id: str
    """The security group whose members are the peer (``sg-...`` or a reference)."""


@runtime_checkable
class AccessLogSink(Protocol):
    """Where a bucket's S3 server access logs go: a ``LogBucket``."""

    def log_access_to(self, scope: Construct, bucket: TerraformResource, prefix: str) -> S3BucketLoggingA:
        """Have S3 write the access logs of ``bucket`` (an ``S3Bucket`` in ``scope``) here, under ``prefix``."""


@runtime_checkable
class Network(Protocol):
    """A VPC and one public and one private subnet per AZ: ``HarborNetwork``. Index i of every list is AZ i."""

    vpc_id: str
    """The VPC's id."""
    vpc_cidr: str
    """The VPC's IPv4 network (Harbor servers allow egress to the data tier within it)."""
    availability_zones: Sequence[str]
    """The AZs, one per subnet pair."""
    public_subnet_ids: Sequence[str]
    """The public subnet of each AZ (load balancers, VIP holders, public Harbors)."""
    private_subnet_ids: Sequence[str]
    """The private subnet of each AZ (Harbor servers, database, cache)."""
    public_subnet_cidrs: Sequence[str]
    """The IPv4 network of each public subnet (fixed addresses are computed in it)."""
    private_subnet_cidrs: Sequence[str]
    """The IPv4 network of each private subnet."""
    log_bucket: AccessLogSink | None
    """Where the buckets built on this network write their access logs; ``None``: no access logging."""


@runtime_checkable
class AdmitsPeers(Connectable, Protocol):
    """A service behind a security group that admits the peers it is told to: a database, a cache."""

    def allow_from(self, peer: Connectable) -> VpcSecurityGroupIngressRule:
        """Admit members of ``peer``'s security group to the service's port."""


@runtime_checkable
class Database(AdmitsPeers, Protocol):
    """Harbor's PostgreSQL: ``HarborDatabase``, or an existing one from ``HarborDatabase.from_attributes``."""

    db_address: str
    """Host name of the endpoint."""
    db_port: int
    """TCP port, known at synth time (Harbor's configuration and the security-group rules hold it)."""
    db_name: str
    """The database Harbor uses."""
    master_username: str
    """The user Harbor logs in as."""
    master_user_secret_arn: str
    """Secrets Manager secret of that user, JSON with a ``password`` field (the form RDS manages)."""
    resource_id: str
    """An id of this database instance that no other instance ever had (RDS: its DbiResourceId): it names the
    fleet's schema-migration locks, so a new or restored database never finds an old one's."""

    def grant_read_master_secret(self, role: IamRole) -> IamRolePolicy:
        """Let ``role`` read ``master_user_secret_arn``."""


@runtime_checkable
class Cache(AdmitsPeers, Protocol):
    """Harbor's Redis (cluster mode disabled, TLS, AUTH token): ``HarborCache``, or an existing one from
    ``HarborCache.from_attributes``."""

    redis_endpoint: str
    """Host name of the primary endpoint."""
    redis_port: int
    """TCP port, known at synth time."""
    auth_token_secret_arn: str
    """Secrets Manager secret holding the AUTH token as a plain string."""

    def grant_read_auth_token(self, role: IamRole) -> IamRolePolicy:
        """Let ``role`` read ``auth_token_secret_arn``."""


@runtime_checkable
class ImageStorage(Protocol):
    """The S3 bucket of Harbor's registry (SSE-KMS): ``RegistryStorage``, or an existing bucket from
    ``RegistryStorage.from_attributes``."""

    bucket_name: str
    """The bucket's name."""
    bucket_arn: str
    """The bucket's ARN."""
    region: str
    """The bucket's region."""
    kms_key_arn: str
    """The KMS key the bucket encrypts objects with (Harbor's storage driver asks for it by id)."""

    def grant_read_write(self, role: IamRole) -> IamRolePolicy:
        """Let ``role`` do what Harbor's registry storage driver does on the bucket and its key."""


@runtime_checkable
class LoadBalancingTargets(Protocol):
    """What a load balancer balances: ``HarborFleet``."""

    target_ips: Sequence[str]
    """The private address of each target, the load balancer's pool."""
    security_group_id: str
    """The targets' security group."""

    def allow_from(self, peer: Connectable, ports: Sequence[int]) -> None:
        """Admit members of ``peer``'s security group (the load balancers) to ``ports``."""
