"""One typed settings object for a harbor-ha deployment, and where it is read from.

Sources, later ones win:
  1. the defaults below;
  2. ``cdktf.json`` -> ``context.harborHa`` (a JSON object keyed by setting name);
  3. a config file: ``$HARBOR_HA_CONFIG`` or ``harbor-ha.json`` beside cdktf.json;
  4. environment variables ``HARBOR_HA_<SETTING NAME IN UPPER CASE>``.

Every value is checked before any construct is built; all problems are reported at once, each naming the
setting, the bad value, where it came from and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from harbor_ha.harbor_config import hostname_problem
from harbor_ha.harbor_release import DEFAULT_HARBOR_VERSION, parse_release, release_problem

ENV_PREFIX = "HARBOR_HA_"
CONTEXT_KEY = "harborHa"
CONFIG_FILE_NAME = "harbor-ha.json"
# HARBOR_HA_* variables that are not settings: the config file, the emulator's endpoint, the state
# directory, the benchmark's eager-import switch.
RESERVED_ENV = frozenset({"CONFIG", "LOCAL_ENDPOINT", "STATE_DIR", "EAGER_PROVIDER"})

TARGETS = ("local", "aws")
# The nodes install Harbor 2.13 or later, which runs on PostgreSQL only (harbor_release.POSTGRES_SINCE).
DB_ENGINES = ("postgres",)
NODE_STORAGE = ("s3", "ebs")
STACK_NAMES = ("active-active", "active-standby", "master-slaves", "master-master")
# Each stack's label in AWS names and tags: a stack's names start with ``<name>-<label>``, so the four stacks of
# one deployment can live side by side in one account and region.
STACK_LABELS = {"active-active": "aa", "active-standby": "as", "master-slaves": "ms", "master-master": "mm"}

_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$")
_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9-]+){1,2}$")
# tls_certificate's value for "each node makes its own certificate".
SELF_SIGNED = "self-signed"
SECRET_ARN_RE = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
_VPC_ID_RE = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")


@dataclass(frozen=True)
class HarborHaSettings:
    """Everything a harbor-ha deployment can be told. Each field states its default."""

    name: str = "harbor"
    """Deployment name. Every AWS name of a stack starts with ``<name>-<aa|as|ms|mm>`` (the stack), so the four
    stacks of one deployment can share an account and region. Default ``harbor``. 2-20 of a-z 0-9 -."""
    target: str = "local"
    """Where to deploy: ``local`` (the embedded emulator) or ``aws``. Default ``local``."""
    region: str = "us-east-1"
    """AWS region. Default ``us-east-1``."""
    availability_zones: tuple[str, ...] = ()
    """AZs to spread over, at least 2 in ``region``. Default: the region's ``a`` and ``b`` zones."""
    harbor_version: str = DEFAULT_HARBOR_VERSION
    """Harbor release installed on every node, X.Y.Z from 2.13.0 on. Default ``2.15.2``."""
    harbor_count: int = 2
    """Harbor servers in active-active (2-20). Default 2. active-standby has exactly 2."""
    harbor_instance_type: str = "m6i.large"
    """EC2 type of a Harbor server. Default ``m6i.large``."""
    lb_instance_type: str = "t3.small"
    """EC2 type of a load-balancer VM (active-active only). Default ``t3.small``."""
    harbor_volume_gib: int = 100
    """Root volume of a Harbor server in GiB (20-16384). Default 100."""
    db_engine: str = "postgres"
    """``postgres``, the only engine of the Harbor releases the nodes install. Default ``postgres``."""
    db_engine_version: str = ""
    """PostgreSQL engine version. Default ``16``."""
    db_instance_class: str = "db.m6g.large"
    """RDS instance class. Default ``db.m6g.large``."""
    db_allocated_storage_gib: int = 50
    """RDS storage in GiB (20-65536). Default 50."""
    db_backup_retention_days: int = 7
    """RDS automated backup retention (1-35 days). Default 7."""
    deletion_protection: bool | None = None
    """Protect the database and cache from deletion. Default: true on ``aws``, false on ``local``."""
    cache_node_type: str = "cache.t4g.medium"
    """ElastiCache node type. Default ``cache.t4g.medium``."""
    cache_node_count: int = 2
    """Redis nodes (primary + replicas), 2-6. Default 2."""
    redis_engine_version: str = "7.1"
    """ElastiCache Redis engine version. Default ``7.1``."""
    hostname: str = ""
    """DNS name clients use for Harbor. Default: none, Harbor is reached at the VIP address."""
    tls_certificate: str = SELF_SIGNED
    """``self-signed`` (made on the nodes) or the ARN of a Secrets Manager secret holding
    ``{"certificate": PEM, "private_key": PEM}``. Default ``self-signed``."""
    ssh_cidrs: tuple[str, ...] = ()
    """Networks allowed to SSH to the VMs. Default: none, SSH closed (use SSM Session Manager)."""
    admin_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    """Networks allowed to reach Harbor over HTTPS. Default: everywhere (it is a registry)."""
    vpc_cidr: str = "10.40.0.0/16"
    """CIDR of a new VPC (/16 to /22). Default ``10.40.0.0/16``. Ignored with ``vpc_id``."""
    vpc_id: str = ""
    """Deploy into this existing VPC instead of a new one. Default: a new VPC."""
    public_subnet_ids: tuple[str, ...] = ()
    """With ``vpc_id``: >= 2 public subnets in distinct AZs. Default none."""
    private_subnet_ids: tuple[str, ...] = ()
    """With ``vpc_id``: >= 2 private subnets in distinct AZs. Default none."""
    replica_count: int = 1
    """Read-only replicas in master-slaves (1-10). Default 1."""
    secondary_region: str = "us-west-2"
    """Region of the second Harbor in master-master. Default ``us-west-2``."""
    node_storage: str = "s3"
    """Image storage of a standalone Harbor (replication topologies): ``s3`` or ``ebs``. Default ``s3``."""
    provider_mirror: str = ""
    """Directory of a Terraform provider filesystem mirror (air-gapped installs). Default: found
    automatically in the usual places, else the public registry."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags put on every resource, besides ``harbor-ha:deployment`` and ``harbor-ha:stack``. Default none."""
    stacks: tuple[str, ...] = STACK_NAMES
    """Which stacks ``main.py`` builds (``harbor-ha up STACK`` builds that one). Default: all four."""

    explicit: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    """Which settings some source set (as opposed to defaults); filled by ``load_settings``."""

    # ---- derived values -------------------------------------------------------------------------
    @property
    def zones(self) -> tuple[str, ...]:
        return self.availability_zones or (f"{self.region}a", f"{self.region}b")

    @property
    def stack(self) -> str:
        """The one stack these settings build (a stack's own settings), else ``""``."""
        return self.stacks[0] if len(self.stacks) == 1 else ""

    @property
    def resource_prefix(self) -> str:
        """Prefix of the AWS names of the stack these settings build: ``<name>-<stack label>`` (``harbor-aa``,
        23 characters at most), so that no two stacks of a deployment share a name. Settings naming several
        stacks (constructs in a stack of your own) give ``name`` alone."""
        return f"{self.name}-{STACK_LABELS[self.stack]}" if self.stack else self.name

    @property
    def harbor_version_tuple(self) -> tuple[int, int, int]:
        return parse_release(self.harbor_version) or (0, 0, 0)

    @property
    def effective_db_engine_version(self) -> str:
        return self.db_engine_version or "16"

    @property
    def effective_deletion_protection(self) -> bool:
        return self.target == "aws" if self.deletion_protection is None else self.deletion_protection

    def replace(self, **changes: Any) -> "HarborHaSettings":
        """A copy with ``changes`` applied and recorded as explicit; validated."""
        merged = dataclasses.replace(self, explicit=self.explicit | frozenset(changes), **changes)
        merged.validate()
        return merged

    # ---- validation -----------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Every invalid value, one sentence each naming the setting, the value and what is allowed."""
        p = _Problems()
        p.check(_NAME_RE.match(self.name or ""), "name", self.name,
                "2-20 characters of lower-case letters, digits and '-', starting with a letter")
        p.check(self.target in TARGETS, "target", self.target, _one_of(TARGETS))
        for key in ("region", "secondary_region"):
            value = getattr(self, key)
            p.check(_REGION_RE.match(value or ""), key, value, "an AWS region name such as us-east-1")
        if self.availability_zones:
            p.check(len(set(self.availability_zones)) >= 2, "availability_zones", self.availability_zones,
                    "at least 2 distinct zones")
            for zone in self.availability_zones:
                p.check(zone.startswith(self.region) and len(zone) == len(self.region) + 1,
                        "availability_zones", zone, f"zones of region {self.region}, such as {self.region}a")
        release = release_problem(self.harbor_version)
        p.check(release is None, "harbor_version", self.harbor_version, release or "")
        p.check(self.db_engine in DB_ENGINES, "db_engine", self.db_engine,
                "'postgres': the nodes install Harbor 2.13 or later, which supports only PostgreSQL (since 1.6.0, "
                "goharbor/harbor#4855); for a legacy Harbor below 1.6 on MariaDB, which you install yourself, "
                "use the HarborDatabase construct with engine='mariadb'" if self.db_engine == "mariadb"
                else _one_of(DB_ENGINES))
        if self.db_engine_version:
            p.check(re.match(r"^\d+(\.\d+){0,2}$", self.db_engine_version), "db_engine_version",
                    self.db_engine_version, "an engine version such as 16 or 16.4")
        p.check(re.match(r"^\d+\.\d+$", self.redis_engine_version or ""), "redis_engine_version",
                self.redis_engine_version, "a Redis version such as 7.1")
        for key in ("harbor_instance_type", "lb_instance_type"):
            value = getattr(self, key)
            p.check(_INSTANCE_TYPE_RE.match(value or "") and not value.startswith(("db.", "cache.")), key,
                    value, "an EC2 instance type such as m6i.large")
        p.check(_INSTANCE_TYPE_RE.match(self.db_instance_class or "") and self.db_instance_class.startswith("db."),
                "db_instance_class", self.db_instance_class, "an RDS instance class such as db.m6g.large")
        p.check(_INSTANCE_TYPE_RE.match(self.cache_node_type or "") and self.cache_node_type.startswith("cache."),
                "cache_node_type", self.cache_node_type, "an ElastiCache node type such as cache.t4g.medium")
        p.whole("harbor_count", self.harbor_count, 2, 20)
        p.whole("harbor_volume_gib", self.harbor_volume_gib, 20, 16384)
        p.whole("db_allocated_storage_gib", self.db_allocated_storage_gib, 20, 65536)
        p.whole("db_backup_retention_days", self.db_backup_retention_days, 1, 35)
        p.whole("cache_node_count", self.cache_node_count, 2, 6)
        p.whole("replica_count", self.replica_count, 1, 10)
        p.check(self.deletion_protection is None or isinstance(self.deletion_protection, bool),
                "deletion_protection", self.deletion_protection, "true or false")
        if self.hostname:
            problem = hostname_problem(self.hostname)
            p.check(problem is None, "hostname", self.hostname, problem or "")
        p.check(self.tls_certificate == SELF_SIGNED or SECRET_ARN_RE.match(self.tls_certificate or ""),
                "tls_certificate", self.tls_certificate,
                "'self-signed' or the ARN of a Secrets Manager secret (arn:aws:secretsmanager:...)")
        for cidr in self.ssh_cidrs:
            network = _network(cidr)
            p.check(network is not None, "ssh_cidrs", cidr, "IPv4 networks such as 192.0.2.0/24")
            if network is not None and network.prefixlen == 0:
                p.add("ssh_cidrs", cidr, "a network narrower than the whole internet (SSH is never opened to all)")
        for cidr in self.admin_cidrs:
            p.check(_network(cidr) is not None, "admin_cidrs", cidr, "IPv4 networks such as 0.0.0.0/0")
        p.check(len(self.admin_cidrs) >= 1, "admin_cidrs", self.admin_cidrs, "at least one network")
        vpc = _network(self.vpc_cidr)
        p.check(vpc is not None and 16 <= vpc.prefixlen <= 22 and vpc.is_private, "vpc_cidr", self.vpc_cidr,
                "a private IPv4 network from /16 to /22, such as 10.40.0.0/16")
        if self.vpc_id:
            p.check(_VPC_ID_RE.match(self.vpc_id), "vpc_id", self.vpc_id, "an id such as vpc-0123456789abcdef0")
            for key in ("public_subnet_ids", "private_subnet_ids"):
                ids = getattr(self, key)
                p.check(len(ids) >= 2 and all(_SUBNET_ID_RE.match(i) for i in ids), key, ids,
                        "with vpc_id: at least 2 subnet ids such as subnet-0123456789abcdef0")
        elif self.public_subnet_ids or self.private_subnet_ids:
            p.add("vpc_id", self.vpc_id, "the id of the VPC that holds the given subnets (subnet ids need vpc_id)")
        for stack in self.stacks:
            p.check(stack in STACK_NAMES, "stacks", stack, _one_of(STACK_NAMES))
        p.check(len(self.stacks) >= 1, "stacks", self.stacks, "at least one of " + ", ".join(STACK_NAMES))
        p.check(self.node_storage in NODE_STORAGE, "node_storage", self.node_storage, _one_of(NODE_STORAGE))
        if self.provider_mirror:
            mirror = Path(self.provider_mirror)
            p.check((mirror / "registry.terraform.io").is_dir(), "provider_mirror", self.provider_mirror,
                    "a directory holding registry.terraform.io/hashicorp/aws/<version>/<os_arch>")
        if not isinstance(self.tags, Mapping):
            p.add("tags", self.tags, "an object of string keys and values")
        else:
            for key, value in self.tags.items():
                p.check(isinstance(key, str) and isinstance(value, str) and 0 < len(key) <= 128
                        and len(value) <= 256 and not key.lower().startswith("aws:"), "tags", {key: value},
                        "string keys (1-128 chars, not starting with 'aws:') and string values (<= 256)")
        return p.messages

    def validate(self) -> None:
        problems = self.problems()
        if problems:
            raise SettingsError(problems)

    def check_for(self, stack: str) -> None:
        """Reject settings that the named stack cannot honour, then the general checks."""
        problems = self.problems()
        p = _Problems()
        if stack == "active-standby":
            if "harbor_count" in self.explicit and self.harbor_count != 2:
                p.add("harbor_count", self.harbor_count, "2 (active-standby is always two nodes); leave it unset")
            if "lb_instance_type" in self.explicit:
                p.add("lb_instance_type", self.lb_instance_type,
                      "nothing: active-standby has no load-balancer VMs; leave it unset")
        if stack in ("master-slaves", "master-master"):
            for key in ("harbor_count", "lb_instance_type", "cache_node_type", "cache_node_count",
                        "db_instance_class", "db_engine"):
                if key in self.explicit:
                    p.add(key, getattr(self, key), f"nothing: {stack} runs Harbor's own database and Redis "
                          "on each node; leave it unset")
        if stack in ("master-slaves", "master-master") and self.hostname:
            prefix = f"replica-{self.replica_count - 1}." if stack == "master-slaves" else "a."
            if len(prefix) + len(self.hostname) > 253:
                p.add("hostname", self.hostname, f"at most {253 - len(prefix)} characters for {stack}, whose "
                      f"nodes are named {prefix}<hostname> (a DNS name holds 253)")
        if stack == "master-master" and self.secondary_region == self.region:
            p.add("secondary_region", self.secondary_region, f"a region other than region ({self.region})")
        if p.messages:
            others = [name for name in self.stacks if name != stack]
            if others:
                p.messages.append(f"(these settings are for the other stacks: to build {stack} alone, set "
                                  f"stacks to {stack!r}, e.g. HARBOR_HA_STACKS={stack})")
        if problems or p.messages:
            raise SettingsError(problems + p.messages)


class SettingsError(ValueError):
    """Invalid settings: ``str()`` lists every problem, one per line, for the user."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("harbor-ha settings are invalid:\n" + "\n".join(f"  - {m}" for m in problems)
                         + "\nFix them in cdktf.json (context.harborHa), harbor-ha.json or HARBOR_HA_* "
                         "environment variables; the README lists every setting.")


class _Problems:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, key: str, value: Any, allowed: str) -> None:
        self.messages.append(f"{key} = {_show(value)}: allowed is {allowed}")

    def check(self, ok: Any, key: str, value: Any, allowed: str) -> None:
        if not ok:
            self.add(key, value, allowed)

    def whole(self, key: str, value: Any, low: int, high: int) -> None:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        self.check(ok, key, value, f"a whole number from {low} to {high}")


# ---- reading the sources --------------------------------------------------------------------------
SETTING_NAMES = tuple(f.name for f in fields(HarborHaSettings) if f.name != "explicit")
_FIELD_TYPES = {f.name: f.type for f in fields(HarborHaSettings)}


def load_settings(project_dir: str | os.PathLike | None = None,
                  environ: Mapping[str, str] | None = None) -> HarborHaSettings:
    """Read and validate the settings of the project in ``project_dir`` (default: current dir)."""
    root = Path(project_dir or os.getcwd())
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    problems: list[str] = []

    cdktf_json = root / "cdktf.json"
    if cdktf_json.is_file():
        context = _read_json(cdktf_json, problems).get("context", {})
        _merge(values, origin, context.get(CONTEXT_KEY, {}), "cdktf.json context.harborHa", problems)

    config_path = environ.get(f"{ENV_PREFIX}CONFIG")
    config_file = Path(config_path) if config_path else root / CONFIG_FILE_NAME
    if config_path and not config_file.is_file():
        problems.append(f"{ENV_PREFIX}CONFIG = {config_path!r}: allowed is the path of an existing JSON file")
    elif config_file.is_file():
        _merge(values, origin, _read_json(config_file, problems), str(config_file), problems)

    from_env = {}
    for env_key, raw in environ.items():
        if env_key.startswith(ENV_PREFIX) and env_key[len(ENV_PREFIX):] not in RESERVED_ENV:
            from_env[env_key[len(ENV_PREFIX):].lower()] = raw
    _merge(values, origin, from_env, "environment", problems, from_text=True)

    if problems:
        raise SettingsError(problems)
    settings = HarborHaSettings(**values, explicit=frozenset(values))
    try:
        settings.validate()
    except SettingsError as error:
        raise SettingsError([_with_origin(m, origin) for m in error.problems]) from None
    return settings


def _merge(values: dict, origin: dict, source: Any, where: str, problems: list[str],
           from_text: bool = False) -> None:
    if not isinstance(source, Mapping):
        problems.append(f"{where}: allowed is a JSON object of settings, got {_show(source)}")
        return
    for key, raw in source.items():
        if key not in SETTING_NAMES:
            hint = difflib.get_close_matches(key, SETTING_NAMES, n=1)
            shown = f"HARBOR_HA_{key.upper()}" if from_text else key
            problems.append(f"{shown} (in {where}) is not a setting" + (f"; did you mean {hint[0]}?" if hint else
                            f"; settings are: {', '.join(SETTING_NAMES)}"))
            continue
        try:
            values[key] = _coerce(key, raw, from_text)
            origin[key] = where
        except ValueError as error:
            problems.append(f"{key} = {_show(raw)} (in {where}): allowed is {error}")


def _coerce(key: str, raw: Any, from_text: bool) -> Any:
    kind = _FIELD_TYPES[key]
    if "tuple" in kind:
        if from_text and isinstance(raw, str):
            raw = [part.strip() for part in raw.split(",") if part.strip()]
        if not isinstance(raw, (list, tuple)) or not all(isinstance(v, str) for v in raw):
            raise ValueError("a list of strings (in the environment: comma-separated)")
        return tuple(raw)
    if kind == "int":
        if from_text and isinstance(raw, str) and re.match(r"^-?\d+$", raw.strip()):
            return int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError("a whole number")
        return raw
    if "bool" in kind:
        if from_text and isinstance(raw, str):
            lowered = raw.strip().lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            if lowered in ("", "default"):
                return None
        if raw is not None and not isinstance(raw, bool):
            raise ValueError("true or false")
        return raw
    if "Mapping" in kind:
        if from_text and isinstance(raw, str):
            try:
                raw = json.loads(raw) if raw.strip().startswith("{") else dict(
                    pair.split("=", 1) for pair in raw.split(",") if pair.strip())
            except ValueError:
                raise ValueError("key=value pairs separated by commas, or a JSON object") from None
        if not isinstance(raw, Mapping):
            raise ValueError("an object of string keys and values")
        return dict(raw)
    if not isinstance(raw, str):
        raise ValueError("a string")
    return raw.strip() if from_text else raw


def _read_json(path: Path, problems: list[str]) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        problems.append(f"{path}: allowed is a readable JSON file ({error})")
        return {}
    if not isinstance(data, dict):
        problems.append(f"{path}: allowed is a JSON object at the top level")
        return {}
    return data


def _with_origin(message: str, origin: Mapping[str, str]) -> str:
    key = message.split(" ", 1)[0]
    return f"{message} (set in {origin[key]})" if key in origin else message


def _network(cidr: str) -> ipaddress.IPv4Network | None:
    try:
        network = ipaddress.ip_network(cidr, strict=True)
    except (TypeError, ValueError):
        return None
    return network if isinstance(network, ipaddress.IPv4Network) else None


def _one_of(options: tuple[str, ...]) -> str:
    return "one of " + ", ".join(repr(o) for o in options)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def reference_table() -> str:
    """The settings reference as a Markdown table, from the field docstrings above (the README holds a copy
    that a test keeps in step)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(HarborHaSettings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    rows = ["| setting | environment variable | meaning and default |", "|---|---|---|"]
    for node, following in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr):
            name = node.target.id  # type: ignore[attr-defined]
            if name == "explicit":
                continue
            doc = " ".join(str(following.value.value).split())  # type: ignore[attr-defined]
            rows.append(f"| `{name}` | `{ENV_PREFIX}{name.upper()}` | {doc.replace('|', '/')} |")
    return "\n".join(rows)
