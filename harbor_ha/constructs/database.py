"""The shared database of Harbor's core and jobservice: Amazon RDS, Multi-AZ.

PostgreSQL for every Harbor since 1.6.0, which dropped MySQL/MariaDB (goharbor/harbor#4855); MariaDB only
for a legacy Harbor below 1.6.0, as the original HA proposal had it. Storage, snapshots and the master
password secret are encrypted with the database's own KMS key, not the image bucket's: a role that may
read images cannot decrypt database snapshots, and either key can be rotated or revoked alone.
The master password is managed by RDS in Secrets Manager; it never appears in synth output or state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from harbor_ha.aws import (
    Construct, DataAwsPartition, DbInstance, DbParameterGroup, DbParameterGroupParameter, DbSubnetGroup, IamRole,
    IamRolePolicy, IamRolePolicyAttachment, TerraformResourceLifecycle, VpcSecurityGroupIngressRule,
)
from harbor_ha.constructs.checkov import skip_check
from harbor_ha.constructs.interfaces import Connectable
from harbor_ha.constructs.data_tier import (
    ClosedPort, ExistingStore, customer_key, grant, require, require_rule, require_rule_value,
    secret_reader_statements,
)
from harbor_ha.harbor_release import DEFAULT_HARBOR_VERSION, POSTGRES_SINCE, parse_release
from harbor_ha import rules


@dataclass(frozen=True)
class _Engine:
    port: int
    default_version: str
    tls_parameter: str
    log_exports: tuple[str, ...]

    def family(self, engine: str, version: str) -> str:
        # Parameter group families: postgres16 (major only), mariadb10.11 (major.minor).
        parts = version.split(".")
        return engine + (parts[0] if engine == "postgres" else ".".join(parts[:2]))


POSTGRES_PORT = 5432
ENGINES = {
    "postgres": _Engine(POSTGRES_PORT, "16", "rds.force_ssl", ("postgresql", "upgrade")),
    "mariadb": _Engine(3306, "10.11", "require_secure_transport", ("error", "slowquery")),
}
# What RDS accepts for enhanced monitoring (0: off).
MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)
RDS_MONITORING_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "monitoring.rds.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
DB_NAME = "registry"
MASTER_USERNAME = "harbor"


@dataclass(frozen=True)
class HarborDatabaseProps:
    name: str
    """Deployment name: the instance is ``<name>-registry``."""
    vpc_id: str
    """VPC of the database's security group."""
    subnet_ids: tuple[str, ...]
    """Private subnets in at least 2 AZs for the DB subnet group (Multi-AZ)."""
    engine: str = "postgres"
    """``postgres`` (Harbor >= 1.6.0) or ``mariadb`` (only Harbor < 1.6.0). Default ``postgres``."""
    harbor_version: str = DEFAULT_HARBOR_VERSION
    """The Harbor release (X.Y.Z) that uses this database; decides which engine is allowed. Default ``2.15.2``."""
    engine_version: str = ""
    """Engine version. Default ``16`` for postgres, ``10.11`` for mariadb."""
    instance_class: str = "db.m6g.large"
    """RDS instance class. Default ``db.m6g.large``."""
    allocated_storage_gib: int = 50
    """Storage in GiB, 20-65536 (gp3). Default 50."""
    backup_retention_days: int = 7
    """Automated backup retention, 1-35 days. Default 7."""
    deletion_protection: bool = True
    """Refuse to delete the instance until this is turned off. Default True."""
    final_snapshot: bool = True
    """Take a snapshot ``<name>-registry-final`` when the instance is deleted. Default True."""
    multi_az: bool = True
    """A synchronous standby in a second AZ. Default True."""
    performance_insights: bool = True
    """Performance Insights (7 days, encrypted with the database key). Default True."""
    monitoring_interval_s: int = 60
    """Enhanced monitoring: seconds between OS metrics (through a monitoring role), one of
    ``MONITORING_INTERVALS``; 0 turns it off. Default 60."""

    def __post_init__(self) -> None:
        require(self.engine in ENGINES, "engine", self.engine, "one of " + ", ".join(map(repr, ENGINES)))
        version = parse_release(self.harbor_version)
        require(version, "harbor_version", self.harbor_version, "a Harbor release X.Y.Z such as 2.15.2")
        require(self.engine != "mariadb" or version < POSTGRES_SINCE, "engine", self.engine,
                f"'postgres': Harbor {self.harbor_version} supports only PostgreSQL (since 1.6.0, "
                "goharbor/harbor#4855); 'mariadb' is for a legacy harbor_version below 1.6.0")
        require(self.engine != "postgres" or version >= POSTGRES_SINCE, "engine", self.engine,
                f"'mariadb': Harbor {self.harbor_version} predates PostgreSQL support (1.6.0)")
        spec = ENGINES[self.engine]
        versions = rules.ENGINE_VERSIONS[self.engine]
        require(not self.engine_version or versions.ok(self.engine_version), "engine_version", self.engine_version,
                versions.allowed)
        require(len(self.subnet_ids) >= 2, "subnet_ids", self.subnet_ids, "at least 2 subnets in distinct AZs")
        require_rule(self, "instance_class", rules.DB_INSTANCE_CLASS)
        require_rule(self, "allocated_storage_gib", rules.DB_STORAGE_GIB)
        require_rule(self, "backup_retention_days", rules.DB_BACKUP_DAYS)
        require(self.monitoring_interval_s in MONITORING_INTERVALS, "monitoring_interval_s",
                self.monitoring_interval_s, "one of " + ", ".join(map(str, MONITORING_INTERVALS)))

    @property
    def effective_engine_version(self) -> str:
        return self.engine_version or ENGINES[self.engine].default_version


class HarborDatabase(Construct):
    """Attributes: ``db_endpoint`` (host:port), ``db_address``, ``db_port``, ``db_name``, ``master_username``,
    ``master_user_secret_arn``, ``security_group_id``, ``engine``, ``kms_key_arn``, ``resource_id`` (the
    instance's immutable DbiResourceId: names its schema-migration locks)."""

    def __init__(self, scope: Construct, id_: str, *, props: HarborDatabaseProps) -> None:
        super().__init__(scope, id_)
        spec = ENGINES[props.engine]
        identifier = f"{props.name}-registry"
        self.engine = props.engine
        self.db_port = spec.port
        self.db_name = DB_NAME
        self.master_username = MASTER_USERNAME
        self.key = customer_key(self, alias=f"{identifier}-db", description=f"{props.name}: Harbor database")
        self.kms_key_arn = self.key.arn
        self._port = ClosedPort(self, name=f"{identifier}-db", vpc_id=props.vpc_id, port=spec.port,
                                service=f"Harbor database ({props.engine})")
        self.security_group_id = self._port.group.id
        subnets = DbSubnetGroup(self, "subnets", name=identifier, subnet_ids=list(props.subnet_ids),
                                description=f"{props.name}: Harbor database, private subnets")
        # A new family (major upgrade) needs a new group before the old one can go.
        parameters = DbParameterGroup(
            self, "parameters", name_prefix=f"{identifier}-",
            family=spec.family(props.engine, props.effective_engine_version),
            description=f"{props.name}: Harbor database, TLS required",
            parameter=[DbParameterGroupParameter(name=spec.tls_parameter, value="1")],
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True))
        monitoring_role = None
        if props.monitoring_interval_s:
            monitoring_role = IamRole(self, "monitoring-role", name_prefix=f"{identifier}-mon-",
                                      assume_role_policy=RDS_MONITORING_TRUST)
            partition = DataAwsPartition(self, "partition").partition
            IamRolePolicyAttachment(
                self, "monitoring-policy", role=monitoring_role.name,
                policy_arn=f"arn:{partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole")
        db = DbInstance(
            self, "instance", identifier=identifier, engine=props.engine,
            engine_version=props.effective_engine_version, instance_class=props.instance_class,
            allocated_storage=props.allocated_storage_gib, storage_type="gp3", storage_encrypted=True,
            kms_key_id=self.key.arn, db_name=DB_NAME, username=MASTER_USERNAME, port=spec.port,
            manage_master_user_password=True, master_user_secret_kms_key_id=self.key.arn,
            iam_database_authentication_enabled=True, multi_az=props.multi_az,
            db_subnet_group_name=subnets.name, vpc_security_group_ids=[self.security_group_id],
            parameter_group_name=parameters.name, publicly_accessible=False,
            backup_retention_period=props.backup_retention_days, copy_tags_to_snapshot=True,
            deletion_protection=props.deletion_protection, skip_final_snapshot=not props.final_snapshot,
            final_snapshot_identifier=f"{identifier}-final" if props.final_snapshot else None,
            auto_minor_version_upgrade=True, allow_major_version_upgrade=False,
            enabled_cloudwatch_logs_exports=list(spec.log_exports),
            performance_insights_enabled=props.performance_insights,
            performance_insights_kms_key_id=self.key.arn if props.performance_insights else None,
            performance_insights_retention_period=7 if props.performance_insights else None,
            monitoring_interval=props.monitoring_interval_s,
            monitoring_role_arn=monitoring_role.arn if monitoring_role else None)
        if not props.deletion_protection:
            skip_check(db, "CKV_AWS_293", "deletion protection is off because the deletion_protection setting "
                       "(default: off on the local target only) turned it off")
        self.db_endpoint = db.endpoint
        self.db_address = db.address
        self.resource_id = db.resource_id
        self.master_user_secret_arn = db.master_user_secret.get(0).secret_arn

    @staticmethod
    def from_attributes(scope: Construct, id_: str, *, db_address: str, master_user_secret_arn: str,
                        security_group_id: str, resource_id: str, db_port: int = POSTGRES_PORT, db_name: str = DB_NAME,
                        master_username: str = MASTER_USERNAME, secret_kms_key_arn: str = "") -> "ExistingDatabase":
        """An existing PostgreSQL database (Harbor >= 1.6 uses no other), e.g. an RDS instance of your own, for
        ``HarborFleetProps.database``, in the fleet's VPC (the Harbor servers may send to its port within the
        VPC's network): nothing of it is created or changed but an ingress rule on ``security_group_id`` per
        ``allow_from``. Any argument but ``db_port`` may be a Terraform reference (a
        data source's or variable's token). ``master_user_secret_arn``: a Secrets Manager secret, JSON with a
        ``password`` field (what RDS manages, ``aws_db_instance.master_user_secret``), encrypted with
        ``secret_kms_key_arn`` (default empty: the AWS managed key). ``resource_id``: an id of this database
        instance that no other ever had, RDS's DbiResourceId (``aws_db_instance.resource_id``); it names the
        fleet's schema-migration locks. Defaults: port 5432, database ``registry``, user ``harbor``."""
        require_rule_value("resource_id", resource_id, rules.DB_RESOURCE_ID_OR_REFERENCE)
        return ExistingDatabase(scope, id_, db_address=db_address, db_port=db_port, db_name=db_name,
                                master_username=master_username, master_user_secret_arn=master_user_secret_arn,
                                security_group_id=security_group_id, secret_kms_key_arn=secret_kms_key_arn,
                                resource_id=resource_id)

    def allow_from(self, peer: Connectable) -> VpcSecurityGroupIngressRule:
        """Admit members of ``peer``'s security group to the database port."""
        return self._port.allow_from(peer)

    def grant_read_master_secret(self, role: IamRole) -> IamRolePolicy:
        """Let ``role`` read the master user's secret (username and password, JSON)."""
        return grant(self, role, "read-master-secret",
                     secret_reader_statements(self.master_user_secret_arn, self.kms_key_arn))


class ExistingDatabase(ExistingStore):
    """A database made outside harbor-ha (``HarborDatabase.from_attributes``), a ``Database``. Attributes:
    ``db_endpoint`` (host:port), ``db_address``, ``db_port``, ``db_name``, ``master_username``,
    ``master_user_secret_arn``, ``security_group_id``, ``resource_id``."""

    service = "Harbor database"
    host_attribute, port_attribute, secret_attribute = "db_address", "db_port", "master_user_secret_arn"
    db_address: str
    db_port: int
    db_name: str
    master_username: str
    master_user_secret_arn: str
    resource_id: str

    @property
    def db_endpoint(self) -> str:
        return f"{self.db_address}:{self.db_port}"

    def grant_read_master_secret(self, role: IamRole) -> IamRolePolicy:
        """Let ``role`` read the master user's secret."""
        return self.grant_read_secret(role, "read-master-secret")
