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
import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from harbor_ha import cloud_facts, rules
from harbor_ha.rules import NODE_STORAGE, SELF_SIGNED
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
STACK_NAMES = ("active-active", "active-standby", "master-slaves", "master-master")


@dataclass(frozen=True)
class HarborHaSettings:
    """Everything a harbor-ha deployment can be told. Each field states its default."""

    name: str = "harbor"
    """Deployment name. Every AWS name of a stack starts with ``<name>-<aa|as|ms|mm>`` (the stack), so the four
    stacks of one deployment can share an account and region. Default ``harbor``. a-z 0-9 -, from 2 characters
    to what the longest name the chosen stacks derive from it allows: 22 for active-active and active-standby,
    21 for master-slaves, 20 for master-master."""
    target: str = "local"
    """Where to deploy: ``local`` (the embedded emulator) or ``aws``. Default ``local``."""
    region: str = "us-east-1"
    """AWS region, one of ``harbor_ha/cloud_facts.py``. Default ``us-east-1``."""
    availability_zones: tuple[str, ...] = ()
    """AZs to spread over, at least 2 in ``region``. Default: the region's ``a`` and ``b`` zones."""
    harbor_version: str = DEFAULT_HARBOR_VERSION
    """Harbor release installed on every node, X.Y.Z from 2.13.0 on. Default ``2.15.2``."""
    harbor_count: int = 2
    """Harbor servers in active-active (2-20). Default 2. active-standby has exactly 2."""
    harbor_instance_type: str = "m6i.large"
    """EC2 type of a Harbor server, x86_64 (active-standby: Nitro, keepalived binds ens5). Default ``m6i.large``."""
    lb_instance_type: str = "t3.small"
    """EC2 type of a load-balancer VM (active-active only), x86_64 Nitro. Default ``t3.small``."""
    ami_id: str = ""
    """AMI of every Harbor server and load-balancer VM, an Amazon Linux 2023 x86_64 image (``ami-`` + 8 or 17
    hex digits). Default: none, a VM gets the AL2023 image current when it is created and keeps it (a newer
    image never replaces a running VM by itself); set it to roll the VMs to that image one at a time."""
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
    """Tags put on every resource, besides harbor-ha's own (``harbor-ha:*``, ``Name``), at most 45. Default none."""
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
        """Prefix of the AWS names of the stack these settings build: ``<name>-<stack label>`` (``harbor-aa``;
        ``name``'s limit keeps every name derived from it within AWS's), so that no two stacks of a deployment share a name. Settings naming several
        stacks (constructs in a stack of your own) give ``name`` alone."""
        return rules.stack_prefix(self.name, self.stack) if self.stack else self.name

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
        """Every invalid value, one sentence each naming the setting, the value and what is allowed. The rules
        are the constructs' own (``harbor_ha.rules``), and the facts about AWS ``harbor_ha.cloud_facts``'."""
        p = _Problems()
        stacks = [stack for stack in self.stacks if stack in STACK_NAMES] or list(STACK_NAMES)
        longest = rules.longest_name(stacks)
        name_ok = rules.DEPLOYMENT_NAME.ok(self.name) and rules.MIN_NAME <= len(self.name) <= longest
        p.check(name_ok, "name", self.name,
                f"{rules.MIN_NAME}-{longest} characters of {rules.DEPLOYMENT_NAME.allowed} (the longest name that "
                f"fits every name {', '.join(stacks)} derive from it: AWS limits those)")
        p.rule(rules.one_of(TARGETS), "target", self.target)
        for key in ("region", "secondary_region"):
            p.rule(rules.REGION, key, getattr(self, key))
        if self.availability_zones:
            zones = self.availability_zones
            p.rule(rules.ZONES, "availability_zones", zones)
            known = cloud_facts.zones_of(self.region)
            unknown = [zone for zone in zones if zone not in known]
            if unknown:
                p.add("availability_zones", unknown[0] if len(unknown) == 1 else unknown,
                      f"zones of region {self.region}: " + (", ".join(known) or "none known"))
        release = release_problem(self.harbor_version)
        p.check(release is None, "harbor_version", self.harbor_version, release or "")
        p.check(self.db_engine in DB_ENGINES, "db_engine", self.db_engine,
                "'postgres': the nodes install Harbor 2.13 or later, which supports only PostgreSQL (since 1.6.0, "
                "goharbor/harbor#4855); for a legacy Harbor below 1.6 on MariaDB, which you install yourself, "
                "use the HarborDatabase construct with engine='mariadb'" if self.db_engine == "mariadb"
                else _one_of(DB_ENGINES))
        if self.db_engine_version and self.db_engine in DB_ENGINES:
            p.rule(rules.ENGINE_VERSIONS[self.db_engine], "db_engine_version", self.db_engine_version)
        p.rule(rules.REDIS_VERSION, "redis_engine_version", self.redis_engine_version)
        p.rule(rules.INSTANCE_TYPE, "harbor_instance_type", self.harbor_instance_type)
        p.rule(rules.VRRP_INSTANCE_TYPE, "lb_instance_type", self.lb_instance_type)
        p.rule(rules.AMI_ID, "ami_id", self.ami_id)
        p.rule(rules.DB_INSTANCE_CLASS, "db_instance_class", self.db_instance_class)
        p.rule(rules.CACHE_NODE_TYPE, "cache_node_type", self.cache_node_type)
        p.rule(rules.FLEET_SIZE, "harbor_count", self.harbor_count)
        p.rule(rules.VOLUME_GIB, "harbor_volume_gib", self.harbor_volume_gib)
        p.rule(rules.DB_STORAGE_GIB, "db_allocated_storage_gib", self.db_allocated_storage_gib)
        p.rule(rules.DB_BACKUP_DAYS, "db_backup_retention_days", self.db_backup_retention_days)
        p.rule(rules.CACHE_NODES, "cache_node_count", self.cache_node_count)
        p.rule(rules.REPLICAS, "replica_count", self.replica_count)
        p.check(self.deletion_protection is None or isinstance(self.deletion_protection, bool),
                "deletion_protection", self.deletion_protection, "true or false")
        if self.hostname:
            problem = hostname_problem(self.hostname)
            p.check(problem is None, "hostname", self.hostname, problem or "")
        if self.tls_certificate != SELF_SIGNED:
            p.check(rules.SECRET_ARN.ok(self.tls_certificate), "tls_certificate", self.tls_certificate,
                    f"'self-signed' or {rules.SECRET_ARN.allowed}")
        self._check_networks(p, "ssh_cidrs", self.ssh_cidrs, rules.SSH_CIDR, rules.MAX_SSH_CIDRS)
        self._check_networks(p, "admin_cidrs", self.admin_cidrs, rules.CLIENT_CIDR, rules.MAX_CLIENT_CIDRS)
        p.check(len(self.admin_cidrs) >= 1, "admin_cidrs", self.admin_cidrs, "at least one network")
        p.rule(rules.VPC_CIDR, "vpc_cidr", self.vpc_cidr)
        if self.vpc_id:
            p.rule(rules.VPC_ID, "vpc_id", self.vpc_id)
            for key in ("public_subnet_ids", "private_subnet_ids"):
                p.rule(rules.SUBNET_IDS, key, getattr(self, key))
            p.check(rules.SUBNET_PAIRS.ok((self.public_subnet_ids, self.private_subnet_ids)), "public_subnet_ids",
                    self.public_subnet_ids, rules.SUBNET_PAIRS.allowed)
        elif self.public_subnet_ids or self.private_subnet_ids:
            p.add("vpc_id", self.vpc_id, "the id of the VPC that holds the given subnets (subnet ids need vpc_id)")
        for stack in self.stacks:
            p.check(stack in STACK_NAMES, "stacks", stack, _one_of(STACK_NAMES))
        p.check(len(self.stacks) >= 1, "stacks", self.stacks, "at least one of " + ", ".join(STACK_NAMES))
        p.check(len(set(self.stacks)) == len(self.stacks), "stacks", self.stacks, "each stack once")
        p.rule(rules.one_of(NODE_STORAGE), "node_storage", self.node_storage)
        if self.provider_mirror:
            mirror = Path(self.provider_mirror)
            p.check(rules.MIRROR_PATH.ok(self.provider_mirror) and (mirror / "registry.terraform.io").is_dir(),
                    "provider_mirror", self.provider_mirror, "a directory holding registry.terraform.io/hashicorp/"
                    f"aws/<version>/<os_arch>, named by {rules.MIRROR_PATH.allowed}")
        if not isinstance(self.tags, Mapping):
            p.add("tags", self.tags, "an object of string keys and values")
        else:
            p.check(len(self.tags) <= rules.MAX_USER_TAGS, "tags", f"{len(self.tags)} tags",
                    f"at most {rules.MAX_USER_TAGS} (AWS allows 50 per resource; harbor-ha puts on up to "
                    f"{len(rules.OWN_TAGS)} of its own: {', '.join(rules.OWN_TAGS)})")
            for item in self.tags.items():
                p.check(rules.TAG.ok(item), "tags", {item[0]: item[1]}, rules.TAG.allowed)
        return p.messages

    @staticmethod
    def _check_networks(p: "_Problems", key: str, cidrs: tuple[str, ...], rule: "rules.Rule", most: int) -> None:
        bad = [cidr for cidr in cidrs if not rule.ok(cidr)]
        if bad:
            p.add(key, bad[0] if len(bad) == 1 else bad, rule.allowed)
        p.check(len(set(cidrs)) == len(cidrs), key, cidrs, "each network once (AWS refuses a duplicate rule)")
        p.check(len(cidrs) <= most, key, f"{len(cidrs)} networks",
                f"at most {most} (each is a rule of a security group, which holds 60)")

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
            if not rules.VRRP_INSTANCE_TYPE.ok(self.harbor_instance_type):
                p.add("harbor_instance_type", self.harbor_instance_type,
                      f"{rules.VRRP_INSTANCE_TYPE.allowed}: active-standby runs keepalived on the Harbor nodes")
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

    def rule(self, rule: "rules.Rule", key: str, value: Any) -> None:
        self.check(rule.ok(value), key, value, rule.allowed)


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
        if isinstance(context, Mapping):
            _merge(values, origin, context.get(CONTEXT_KEY, {}), "cdktf.json context.harborHa", problems)
        else:
            problems.append(f"{cdktf_json} context = {_show(context)}: allowed is a JSON object")

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
        if from_text and isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip()):
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
