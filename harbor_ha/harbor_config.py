"""``harbor.yml`` for a harbor-ha node, rendered from typed inputs.

No secret is ever rendered: passwords are placeholders (``@@NAME@@``) in single-quoted YAML scalars, which
the node's configure script replaces with values it reads from Secrets Manager at boot (doubling any single
quote, so any password stays one valid scalar). Terraform references (database address, bucket name ...)
may appear as values; they resolve in the user-data.

The keys follow Harbor's own ``make/harbor.yml.tmpl`` (tests compare the two); ``storage_service.s3`` holds
options of the distribution S3 storage driver, which the template leaves to that driver's documentation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from harbor_ha.cloud_init import SAFE_DUMPER
from harbor_ha.harbor_release import minor_release, release_problem

# Paths on the node: the configure script puts the certificate there (see templates/harbor).
STATE_DIR = "/etc/harbor-ha"
TLS_CERTIFICATE = f"{STATE_DIR}/tls/server.crt"
TLS_PRIVATE_KEY = f"{STATE_DIR}/tls/server.key"
SSL_MODES = ("require", "verify-ca", "verify-full")
# The CA bundle of the nodes' OS (Amazon Linux 2023): ElastiCache's certificates chain to Amazon's roots in it.
# Harbor's loader requires external_redis.tlsOptions.rootCA with TLS on and copies it into its trust store.
REDIS_ROOT_CA = "/etc/pki/tls/certs/ca-bundle.crt"
# Harbor's loader (make/photon/prepare utils/configs.py, validate) refuses exactly these two hostnames.
HARBOR_REFUSED_HOSTNAMES = ("127.0.0.1", "reg.mydomain.com")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# Two or more labels, the last starting with a letter (so no address), 253 characters at most.
_HOSTNAME_RE = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\.[a-z](?:[a-z0-9-]{{0,61}}[a-z0-9])?")
HOSTNAME_ALLOWED = "a DNS name of two or more labels such as registry.example.com (lower case; no scheme, port or address)"


def hostname_problem(hostname: object) -> str | None:
    """What is allowed instead, if clients cannot be given ``hostname`` (Harbor's ``hostname``, the name
    the nodes' certificates carry); None if they can."""
    if hostname in HARBOR_REFUSED_HOSTNAMES:
        return f"{HOSTNAME_ALLOWED}, of your own: Harbor's installer refuses {hostname!r}"
    if not isinstance(hostname, str) or not _HOSTNAME_RE.fullmatch(hostname):
        return HOSTNAME_ALLOWED
    return None


def placeholder(name: str) -> str:
    """The stand-in for a secret the node fills in at boot (configure-harbor.sh knows each name)."""
    return f"@@{name}@@"


@dataclass(frozen=True)
class ExternalDatabase:
    """Harbor's PostgreSQL elsewhere (RDS)."""

    host: str
    port: int
    db_name: str
    username: str
    ssl_mode: str = "require"
    """libpq ``sslmode``: ``require`` (encrypted; Harbor's containers do not trust the RDS CA out of the box,
    so ``verify-*`` needs that CA added to them), ``verify-ca`` or ``verify-full``. Default ``require``."""

    def __post_init__(self) -> None:
        if self.ssl_mode not in SSL_MODES:
            raise ValueError(f"ssl_mode = {self.ssl_mode!r}: allowed is one of {', '.join(SSL_MODES)} "
                             "(the database is reached over TLS only)")


@dataclass(frozen=True)
class ExternalRedis:
    """Harbor's Redis elsewhere (ElastiCache, cluster mode disabled), reached over TLS (Harbor >= 2.13)."""

    host: str
    port: int


@dataclass(frozen=True)
class S3Storage:
    """Image storage in S3 through the node's instance role (no access keys)."""

    region: str
    bucket: str
    kms_key_arn: str
    """The bucket's KMS key: without ``keyid`` the driver would ask S3 for SSE-S3 instead."""


@dataclass(frozen=True)
class HarborConfig:
    """What differs between harbor-ha nodes; everything else takes Harbor's template defaults."""

    harbor_version: str
    """The Harbor release (X.Y.Z): ``_version`` is its X.Y.0, as the template of that release has it."""
    hostname: str = placeholder("HOSTNAME")
    """Name or address clients use. Default: filled in at boot from the node's environment."""
    external_database: ExternalDatabase | None = None
    """Default None: Harbor's own PostgreSQL on the node."""
    external_redis: ExternalRedis | None = None
    """Default None: Harbor's own Redis on the node."""
    s3: S3Storage | None = None
    """Default None: images on the node's ``data_volume``."""
    data_volume: str = "/data"
    """Harbor's data directory on the node. Default ``/data``."""
    max_job_workers: int = 10
    """Job service workers (replication, scans, GC). Default 10."""

    def __post_init__(self) -> None:
        problem = release_problem(self.harbor_version)
        if problem:
            raise ValueError(f"harbor_version = {self.harbor_version!r}: allowed is {problem}")


class _Dumper(SAFE_DUMPER):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Placeholders must be single-quoted scalars: the boot script escapes values for exactly that style.
    style = "'" if "@@" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def harbor_yml_document(config: HarborConfig) -> dict:
    """The harbor.yml content as a mapping."""
    doc: dict = {
        "hostname": config.hostname,
        "http": {"port": 80},
        "https": {"port": 443, "certificate": TLS_CERTIFICATE, "private_key": TLS_PRIVATE_KEY,
                  "strong_ssl_ciphers": True},
        "harbor_admin_password": placeholder("ADMIN_PASSWORD"),
        "data_volume": config.data_volume,
        "trivy": {"ignore_unfixed": False, "skip_update": False, "skip_java_db_update": False,
                  "offline_scan": False, "security_check": "vuln", "insecure": False, "timeout": "5m0s"},
        "jobservice": {"max_job_workers": config.max_job_workers, "max_job_duration_hours": 24,
                       "job_loggers": ["STD_OUTPUT", "FILE"], "logger_sweeper_duration": 1},
        "notification": {"webhook_job_max_retry": 3, "webhook_job_http_client_timeout": 3},
        "log": {"level": "info", "local": {"rotate_count": 50, "rotate_size": "200M",
                                           "location": "/var/log/harbor"}},
        "_version": minor_release(config.harbor_version),
        "upload_purging": {"enabled": True, "age": "168h", "interval": "24h", "dryrun": False},
        "cache": {"enabled": False, "expire_hours": 24},
    }
    if config.external_database is None:
        doc["database"] = {"password": placeholder("DB_PASSWORD"), "max_idle_conns": 100, "max_open_conns": 900,
                           "conn_max_lifetime": "5m", "conn_max_idle_time": 0}
    else:
        db = config.external_database
        doc["external_database"] = {"harbor": {
            "host": db.host, "port": db.port, "db_name": db.db_name, "username": db.username,
            "password": placeholder("DB_PASSWORD"), "ssl_mode": db.ssl_mode,
            "max_idle_conns": 2, "max_open_conns": 0}}
    if config.external_redis is not None:
        redis = config.external_redis
        doc["external_redis"] = {"host": f"{redis.host}:{redis.port}", "password": placeholder("REDIS_PASSWORD"),
                                 "tlsOptions": {"enable": True, "rootCA": REDIS_ROOT_CA}, "registry_db_index": 1,
                                 "jobservice_db_index": 2, "trivy_db_index": 5, "idle_timeout_seconds": 30}
    if config.s3 is not None:
        s3 = config.s3
        doc["storage_service"] = {"s3": {
            "region": s3.region, "bucket": s3.bucket, "encrypt": True, "keyid": s3.kms_key_arn,
            "secure": True, "v4auth": True, "rootdirectory": "/registry"}}
    return doc


def dump_harbor_yml(document: dict) -> str:
    """YAML text of a harbor.yml mapping, placeholders single-quoted."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1_000_000)


def render_harbor_yml(config: HarborConfig) -> str:
    return dump_harbor_yml(harbor_yml_document(config))
