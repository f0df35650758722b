"""The rules values must meet, each written once: the construct props check their values with these, and
``harbor_ha.settings`` checks (or derives) the settings from the same rules, so the two never disagree. Free
of cdktf, so that a mistake is reported before the jsii runtime starts. Patterns match the whole value
(``fullmatch``: no trailing newline slips through). Facts about AWS itself come from ``cloud_facts``.

The names: every stack derives the names of its parts from the deployment name with the builders below
(``replica_name`` ...), so the settings can check the longest derived name against each construct's limit.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable

from harbor_ha import cloud_facts


@dataclass(frozen=True)
class Rule:
    """What a value must be: ``ok(value)``, and ``allowed``, the words for the user."""

    allowed: str
    test: Callable[[Any], Any]

    def ok(self, value: Any) -> bool:
        try:
            return bool(self.test(value))
        except (TypeError, ValueError, AttributeError):
            return False


def pattern(regex: str, allowed: str) -> Rule:
    compiled = re.compile(regex)
    return Rule(allowed, lambda value: isinstance(value, str) and compiled.fullmatch(value) is not None)


def whole(low: int, high: int) -> Rule:
    return Rule(f"a whole number from {low} to {high}",
                lambda value: isinstance(value, int) and not isinstance(value, bool) and low <= value <= high)


def one_of(options) -> Rule:
    return Rule("one of " + ", ".join(repr(o) for o in options), lambda value: value in options)


# ---- names (each limit is AWS's for the longest name the construct builds from it) ---------------------
# HarborHosts: IAM role / instance profile name_prefix "<name>-" (AWS: 38) and "<name>-harbor-admin-" (secret).
HOSTS_NAME = pattern(r"[a-z][a-z0-9-]{0,27}", "1-28 lower-case letters, digits and '-', starting with a letter")
# RegistryStorage: bucket_prefix "<name>-registry-" (AWS: 37).
STORAGE_NAME = pattern(r"[a-z0-9][a-z0-9-]{0,26}",
                       "1-27 lower-case letters, digits and '-' (S3 allows 37 for the prefix <name>-registry-)")
# HarborCache: replication group id "<name>-redis" (AWS: 40).
CACHE_NAME = pattern(r"[a-z][a-z0-9-]{0,33}", "1-34 lower-case letters, digits and '-', starting with a letter")
# LogBucket: bucket_prefix "<name>-logs-" (AWS: 37).
LOG_BUCKET_NAME = pattern(r"[a-z0-9][a-z0-9-]{0,30}", "1-31 lower-case letters, digits and '-'")
# The deployment name itself: also a DNS label (<name>.harbor-ha.internal) and a tag value.
DEPLOYMENT_NAME = pattern(r"[a-z][a-z0-9-]*[a-z0-9]",
                          "lower-case letters, digits and '-', starting with a letter, not ending with '-'")
MIN_NAME = 2

MAX_REPLICAS = 10
SITE_LABELS = ("a", "b")


# Each stack's label in AWS names: a stack's names start with ``<name>-<label>`` (its prefix), so the four
# stacks of one deployment can live side by side in one account and region.
STACK_LABELS = {"active-active": "aa", "active-standby": "as", "master-slaves": "ms", "master-master": "mm"}


def stack_prefix(name: str, stack: str) -> str:
    """The prefix of every AWS name of ``stack`` in deployment ``name``."""
    return f"{name}-{STACK_LABELS[stack]}"


def master_name(prefix: str) -> str:
    return f"{prefix}-m"


def replica_name(prefix: str, index: int) -> str:
    return f"{prefix}-r{index}"


def site_name(prefix: str, label: str) -> str:
    """A master-master site (``a`` in the first region, ``b`` in the second)."""
    return f"{prefix}-{label}"


def carrier_name(name: str) -> str:
    """The bucket that carries the replication configurator of a topology (or site) ``name``."""
    return f"{name}-c"


def lb_name(prefix: str) -> str:
    return f"{prefix}-lb"


def derived_names(name: str, stack: str) -> list[tuple[Rule, str]]:
    """Every (construct rule, name) that ``stack`` builds from the deployment name ``name``."""
    prefix = stack_prefix(name, stack)
    if stack in ("active-active", "active-standby"):
        return [(HOSTS_NAME, prefix), (HOSTS_NAME, lb_name(prefix)), (STORAGE_NAME, prefix), (CACHE_NAME, prefix),
                (LOG_BUCKET_NAME, prefix)]
    if stack == "master-slaves":
        nodes = [master_name(prefix), replica_name(prefix, MAX_REPLICAS - 1)]
        return [*((rule, node) for node in nodes for rule in (HOSTS_NAME, STORAGE_NAME)),
                (STORAGE_NAME, carrier_name(prefix)), (LOG_BUCKET_NAME, prefix)]
    sites = [site_name(prefix, label) for label in SITE_LABELS]
    return [*((rule, site) for site in sites for rule in (HOSTS_NAME, STORAGE_NAME)),
            *((STORAGE_NAME, carrier_name(site)) for site in sites), (LOG_BUCKET_NAME, prefix)]


def longest_name(stacks) -> int:
    """The longest deployment name every construct of ``stacks`` can carry."""
    def fits(length: int) -> bool:
        name = "a" * length
        return all(rule.ok(derived) for stack in stacks for rule, derived in derived_names(name, stack))
    return max((n for n in range(MIN_NAME, 64) if fits(n)), default=MIN_NAME)


# ---- Harbor nodes -------------------------------------------------------------------------------------
# tls_certificate's value for "each node makes its own certificate".
SELF_SIGNED = "self-signed"
# Where a standalone Harbor keeps its images: S3, or the data volume that outlives the instance.
NODE_STORAGE = ("s3", "ebs")

# ---- AWS identifiers ----------------------------------------------------------------------------------
VPC_ID = pattern(r"vpc-[0-9a-f]{8,17}", "an id such as vpc-0123456789abcdef0")
SUBNET_ID = pattern(r"subnet-[0-9a-f]{8,17}", "an id such as subnet-0123456789abcdef0")
SUBNET_PAIRS = Rule("one public subnet per private subnet, none of them both",
                    lambda pair: len(pair[0]) == len(pair[1]) and not set(pair[0]) & set(pair[1]))


def _subnet_ids(allowed: str, one_ok: Callable[[Any], bool]) -> Rule:
    return Rule(allowed, lambda ids: len(ids) >= 2 and len(set(ids)) == len(ids) and all(one_ok(i) for i in ids))


SUBNET_IDS = _subnet_ids("with vpc_id: at least 2 subnet ids, each once, such as subnet-0123456789abcdef0",
                         SUBNET_ID.ok)

# A value Terraform knows only at apply: cdktf's token for an attribute of a resource in the same stack
# (``vpc.id``). Construct props take one wherever an id is asked for; settings, which come from text, never do.
# Where the replication configurator lies in its carrier bucket: what tells a carrier from the other buckets,
# which may hold harbor-ha's boot programs.
REPLICATION_CONFIGURATOR_KEY = "harbor-ha/replication.py"
TOKEN_MARK = "${TfToken["


def unresolved(value: Any) -> bool:
    return isinstance(value, str) and TOKEN_MARK in value


def or_reference(rule: Rule) -> Rule:
    """``rule``, or a reference to a resource, data source or variable of the same stack."""
    return Rule(f"{rule.allowed}, or a reference such as vpc.id (an attribute of a resource, data source or "
                "variable of the same stack)",
                lambda value: unresolved(value) or rule.test(value))


VPC_ID_OR_REFERENCE = or_reference(VPC_ID)
SUBNET_IDS_OR_REFERENCES = _subnet_ids(
    f"{SUBNET_IDS.allowed}, or references such as subnet.id to subnets made in the same stack",
    or_reference(SUBNET_ID).ok)
# Secrets Manager: secret names are letters, digits and /_+=.@- (and "!" in the names AWS services give the
# secrets they manage, such as RDS's rds!db-<id>), and the ARN ends in "-" plus 6 characters.
SECRET_ARN_RE = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:secretsmanager:(?P<region>[a-z]{2}(?:-gov)?-[a-z]+-\d):\d{12}:secret:"
    r"[A-Za-z0-9/_+=.@!-]{1,512}-[A-Za-z0-9]{6}")
SECRET_ARN = Rule("the ARN of a Secrets Manager secret, arn:aws:secretsmanager:<region>:<account>:secret:<name>-XXXXXX",
                  lambda value: isinstance(value, str) and SECRET_ARN_RE.fullmatch(value))


# ---- what an importer (``HarborDatabase.from_attributes`` ...) is given: literal, or a reference ------------
SECRET_ARN_OR_REFERENCE = or_reference(SECRET_ARN)
SECURITY_GROUP_ID_OR_REFERENCE = or_reference(pattern(r"sg-[0-9a-f]{8,17}", "an id such as sg-0123456789abcdef0"))
KMS_KEY_ARN_OR_REFERENCE = or_reference(pattern(
    r"arn:aws(?:-cn|-us-gov)?:kms:[a-z]{2}(?:-gov)?-[a-z]+-\d:\d{12}:key/[0-9a-f-]{36}",
    "a KMS key ARN, arn:aws:kms:<region>:<account>:key/<key id>"))
# Names the schema-migration locks of the database (in an SSM parameter name).
DB_RESOURCE_ID_OR_REFERENCE = or_reference(pattern(r"[A-Za-z0-9_.-]{1,128}", "an id of letters, digits and _.- "
                                                   "such as an RDS instance's DbiResourceId, db-ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
HOST_OR_REFERENCE = or_reference(pattern(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}", "a DNS name or IPv4 address"))
BUCKET_NAME_OR_REFERENCE = or_reference(pattern(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
                                                "an S3 bucket name (3-63 lower-case letters, digits, '.', '-')"))
PORT = whole(1, 65535)

REGION = Rule("an AWS region harbor-ha knows, such as us-east-1 (harbor_ha/cloud_facts.py lists them)",
              lambda value: value in cloud_facts.REGION_ZONES)
REGION_OR_REFERENCE = or_reference(REGION)

# ---- instance types: what the AMI runs on (x86_64) and what keepalived binds (ens5) ----------------------
AMI_ARCHITECTURE = "x86_64"
VRRP_INTERFACE = "ens5"


def _facts(value):
    return cloud_facts.instance_type(value) if isinstance(value, str) else None


INSTANCE_TYPE = Rule(f"an {AMI_ARCHITECTURE} EC2 instance type harbor-ha knows, such as m6i.large (the AMI is "
                     "Amazon Linux 2023 x86_64; harbor_ha/cloud_facts.py lists the types)",
                     lambda value: _facts(value) and _facts(value).architecture == AMI_ARCHITECTURE)
VRRP_INSTANCE_TYPE = Rule(f"an {AMI_ARCHITECTURE} Nitro EC2 instance type, such as t3.small (keepalived binds "
                          f"{VRRP_INTERFACE}, the first interface of Nitro types)",
                          lambda value: INSTANCE_TYPE.ok(value) and _facts(value).first_interface == VRRP_INTERFACE)
# Empty: the image the AL2023 SSM parameter names when a VM is created.
AMI_ID = pattern(r"|ami-(?:[0-9a-f]{8}|[0-9a-f]{17})", f"none, or an EC2 image id (ami- and 8 or 17 hex digits) of "
                 f"an Amazon Linux 2023 {AMI_ARCHITECTURE} image (the boot scripts use its dnf packages)")
DB_INSTANCE_CLASS = pattern(r"db\.[a-z][a-z0-9-]*\.[a-z0-9]+", "an RDS instance class such as db.m6g.large")
CACHE_NODE_TYPE = pattern(r"cache\.[a-z][a-z0-9-]*\.[a-z0-9]+", "an ElastiCache node type such as cache.t4g.medium")

# ---- versions -----------------------------------------------------------------------------------------
REDIS_VERSION = pattern(r"[1-9]\d?\.\d{1,2}", "a Redis version such as 7.1")
ENGINE_VERSIONS = {
    "postgres": pattern(r"1\d(\.\d{1,2})?", "a PostgreSQL version from 10 to 19, such as 16 or 16.4"),
    "mariadb": pattern(r"10\.\d{1,2}(\.\d{1,2})?|11\.\d{1,2}(\.\d{1,2})?", "a MariaDB version such as 10.11"),
}

# ---- sizes and counts ---------------------------------------------------------------------------------
VOLUME_GIB = whole(20, 16384)
FLEET_SIZE = whole(2, 20)
CACHE_NODES = whole(2, 6)
REPLICAS = whole(1, MAX_REPLICAS)
DB_STORAGE_GIB = whole(20, 65536)
DB_BACKUP_DAYS = whole(1, 35)

# ---- networks -----------------------------------------------------------------------------------------


def ipv4_network(value) -> ipaddress.IPv4Network | None:
    if not isinstance(value, str) or value != value.strip():
        return None
    try:
        network = ipaddress.ip_network(value, strict=True)
    except (TypeError, ValueError):
        return None
    return network if isinstance(network, ipaddress.IPv4Network) else None


MAX_ZONES = 6
ZONES = Rule(f"2 to {MAX_ZONES} distinct AZs (at least 2)",
             lambda zones: 2 <= len(zones) <= MAX_ZONES and len(set(zones)) == len(zones))
VPC_CIDR = Rule("a private IPv4 network from /16 to /22, such as 10.40.0.0/16",
                lambda value: ipv4_network(value) and 16 <= ipv4_network(value).prefixlen <= 22
                and ipv4_network(value).is_private)
# An SSH network wider than a /8 (16 M addresses) is the internet in halves or quarters (0.0.0.0/1 +
# 128.0.0.0/1): never.
SSH_MIN_PREFIX = 8
SSH_CIDR = Rule(f"IPv4 networks from /{SSH_MIN_PREFIX} to /32, narrower than the whole internet (SSH is never "
                "opened to all, nor to it in halves), such as 192.0.2.0/24",
                lambda value: ipv4_network(value) and ipv4_network(value).prefixlen >= SSH_MIN_PREFIX)
CLIENT_CIDR = Rule("IPv4 networks such as 0.0.0.0/0 or 192.0.2.0/24", lambda value: ipv4_network(value))
# Security groups hold 60 inbound rules by default; each client network takes two (443 and 80).
MAX_CLIENT_CIDRS = 20
MAX_SSH_CIDRS = 10

# ---- tags ---------------------------------------------------------------------------------------------
# harbor-ha's own tags: every resource names its deployment and stack (the inventory finds a stack by them);
# each VM its role in a redundant group, and the VIP holders and the VIP the VIP's name (vip-notify finds the
# address by it). Read by verify, rolling changes and the views without any cdktf.
DEPLOYMENT_TAG_KEY = "harbor-ha:deployment"
STACK_TAG_KEY = "harbor-ha:stack"
ROLE_TAG_KEY = "harbor-ha:role"
VIP_TAG_KEY = "harbor-ha:vip"
# AWS allows 50 tags per resource; harbor-ha puts up to 5 of its own on one.
OWN_TAG_PREFIX = "harbor-ha:"
OWN_TAGS = (DEPLOYMENT_TAG_KEY, STACK_TAG_KEY, ROLE_TAG_KEY, VIP_TAG_KEY, "Name")
MAX_USER_TAGS = 50 - len(OWN_TAGS)
_TAG_TEXT = re.compile(r"[\w .:/=+\-@]*", re.ASCII)
TAG = Rule(f"string keys of 1-128 and values of 0-256 letters, digits, spaces and _ . : / = + - @, keys not "
           f"starting with 'aws:' or '{OWN_TAG_PREFIX}' and not 'Name'",
           lambda item: isinstance(item[0], str) and isinstance(item[1], str) and 0 < len(item[0]) <= 128
           and len(item[1]) <= 256 and _TAG_TEXT.fullmatch(item[0]) and _TAG_TEXT.fullmatch(item[1])
           and not item[0].lower().startswith(("aws:", OWN_TAG_PREFIX)) and item[0] not in OWN_TAGS)

# ---- files harbor-ha writes a value into --------------------------------------------------------------
# The provider mirror path goes into an HCL string of the Terraform CLI configuration.
MIRROR_PATH = Rule("a directory path without quotes, backslashes, '${', '%{' or control characters",
                   lambda value: isinstance(value, str) and not re.search(r'["\\\x00-\x1f\x7f]|\$\{|%\{', value))
