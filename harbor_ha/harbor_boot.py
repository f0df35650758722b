"""The first-boot steps of a Harbor node, as cloud-config parts that the Harbor fleet and the standalone
node share: mount the data volume (standalone on EBS), install Docker + compose + the signed Harbor
installer, fetch the deployment's shared secrets (fleet), write harbor.yml and start Harbor.

Only names and ARNs travel in user-data (``/etc/harbor-ha/harbor.env``); the scripts in
``templates/harbor`` read every password from Secrets Manager on the node. The Docker compose plugin is
not packaged for Amazon Linux 2023: it is downloaded from Docker's GitHub release (nodes reach the
internet through NAT) and checked against the published SHA-256.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

from harbor_ha.cloud_init import CloudConfig, WriteFile, has_reference, without_comment_lines
from harbor_ha.harbor_config import STATE_DIR, HarborConfig, dump_harbor_yml, harbor_yml_document, placeholder
from harbor_ha.rules import TOKEN_MARK

TEMPLATES = Path(__file__).resolve().parent / "templates" / "harbor"
SCRIPT_DIR = "/usr/local/libexec/harbor-ha"
ENV_PATH = f"{STATE_DIR}/harbor.env"
# configure-harbor.sh fills placeholder NAME from the environment variable HARBOR_YML_NAME.
YML_VALUE_PREFIX = "HARBOR_YML_"
COMPOSE_VERSION = "2.29.7"
# Boot steps of fleet nodes that travel in the fleet's bucket under CARRIED_PREFIX, not in user-data (EC2 allows
# 16 KiB, which active-standby's nodes nearly fill): run-step.sh fetches a step it does not find from
# BOOT_PROGRAMS. Harbor's registry keeps its data under /registry of that bucket.
CARRIED_STEPS = ("shared-secrets.sh", "start-harbor.sh")
CARRIED_PREFIX = "harbor-ha/boot"
# Harbor's release signing key (goharbor installation docs: gpg --receive-keys 644FF454C0B4115C).
HARBOR_SIGNING_KEY = "644FF454C0B4115C"
_TOKEN_RE = re.compile(re.escape(TOKEN_MARK) + r"[^\]]+\]\}")
# "!" is in the names of the secrets RDS manages (rds!db-<id>); a script sourcing the file expands no history.
_SAFE_VALUE_RE = re.compile(r"^[A-Za-z0-9_./:@+=,!-]*$")


def script_path(name: str) -> Path:
    """A boot script of ``templates/harbor`` in this checkout (tests run them)."""
    return TEMPLATES / name


def boot_script(name: str) -> WriteFile:
    """A boot script without its comment lines: they are for readers of this repository, and user-data
    has 16 KiB for everything (the scripts hold no here-document whose lines start with '#')."""
    return WriteFile(path=f"{SCRIPT_DIR}/{name}", content=without_comment_lines(script_path(name).read_text()),
                     permissions="0755")


def _run(name: str) -> tuple[str, ...]:
    return (f"{SCRIPT_DIR}/run-step.sh", name)


def schema_lock_parameter(deployment: str, database_id: str, harbor_version: str) -> str:
    """The SSM parameter that start-harbor.sh takes as the schema-migration lock of the database
    ``database_id`` (the RDS instance's resource id) at ``harbor_version``. Named for the database: a new one,
    also one restored from a snapshot, starts unlocked, and a destroyed deployment's leftover locks never
    stand for a redeployment's empty database."""
    return f"{schema_lock_prefix(deployment)}/{database_id}/harbor-{harbor_version}"


def schema_lock_prefix(deployment: str) -> str:
    """Where every schema-migration lock of ``deployment`` lives (its nodes may write only there)."""
    return f"/harbor-ha/{deployment}/schema-migration"


def environment_file(values: Mapping[str, str]) -> WriteFile:
    """``/etc/harbor-ha/harbor.env``: what the boot scripts need to know, names and ARNs only. A value is
    a Terraform reference or plain text without quotes or spaces, so the file sources safely."""
    lines = []
    for key, value in values.items():
        if not _SAFE_VALUE_RE.match(_TOKEN_RE.sub("", value)):
            raise ValueError(f"{key} = {value!r}: allowed is text of letters, digits and _./:@+=,!- "
                             "(or a Terraform reference)")
        lines.append(f"{key}={value}\n")
    return WriteFile(path=ENV_PATH, content="".join(lines), permissions="0600")


def data_volume_part() -> CloudConfig:
    """Mount the EBS volume ``DATA_VOLUME_ID`` at /data before anything writes there."""
    return CloudConfig(files=(boot_script("data-volume.sh"),), commands=(_run("data-volume.sh"),))


def install_part() -> CloudConfig:
    """Docker, the compose plugin and the Harbor installer in /opt/harbor."""
    return CloudConfig(packages=("docker",), files=(boot_script("install-harbor.sh"),),
                       commands=(_run("install-harbor.sh"),))


def carried_step(name: str) -> str:
    """The text of a step of ``CARRIED_STEPS`` as the bucket carries it (comment lines left out)."""
    return without_comment_lines(script_path(name).read_text())


def lift_references(document: dict) -> tuple[dict, dict[str, str]]:
    """``document`` with each value that holds a Terraform reference replaced by a placeholder, and the
    environment that carries those values. harbor.yml then holds no reference, so it travels compressed:
    user-data stays well under EC2's 16 KiB however long the resolved ARNs and endpoints are."""
    lifted: dict[str, str] = {}

    def walk(node):
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, str) and has_reference(node):
            name = f"TF_VALUE_{len(lifted)}"
            lifted[YML_VALUE_PREFIX + name] = node
            return placeholder(name)
        return node

    return walk(document), lifted


def configure_part(config: HarborConfig) -> tuple[CloudConfig, dict[str, str]]:
    """harbor.yml (secrets and Terraform-made values filled in on the node), prepare, harbor.service for
    restarts, and Harbor's start unless ``SCHEMA_LOCK_PARAMETER`` is set (then start-harbor.sh starts it);
    and the environment the template's lifted values travel in."""
    document, lifted = lift_references(harbor_yml_document(config))
    part = CloudConfig(
        files=(WriteFile(path=f"{STATE_DIR}/harbor.yml.tmpl", content=dump_harbor_yml(document), permissions="0600"),
               WriteFile(path="/etc/systemd/system/harbor.service", content=script_path("harbor.service").read_text()),
               boot_script("configure-harbor.sh")),
        commands=(_run("configure-harbor.sh"),))
    return part, lifted


def harbor_cloud_config(*, config: HarborConfig, environment: Mapping[str, str], fleet_bucket: str = "",
                        data_volume: bool = False, extra: CloudConfig | None = None) -> CloudConfig:
    """The whole first boot of one Harbor node; ``extra`` (keepalived, replication setup ...) runs last,
    with Harbor up. ``fleet_bucket``: the bucket of a node that shares its database, Redis and bucket with
    others (the fleet), which fetches the deployment's shared secrets (shared-secrets.sh) and starts Harbor
    under the database's schema-migration lock (start-harbor.sh, with ``SCHEMA_LOCK_PARAMETER`` in
    ``environment``); both steps travel in that bucket (``CARRIED_STEPS``, which the caller puts there).
    Default none: a standalone node, which starts Harbor at once."""
    configure, lifted = configure_part(config)
    carried = {"BOOT_PROGRAMS": f"s3://{fleet_bucket}/{CARRIED_PREFIX}"} if fleet_bucket else {}
    values = {"HARBOR_VERSION": config.harbor_version, "COMPOSE_VERSION": COMPOSE_VERSION,
              "HARBOR_SIGNING_KEY": HARBOR_SIGNING_KEY, **environment, **carried, **lifted}
    parts = [CloudConfig(files=(environment_file(values), boot_script("run-step.sh")))]
    if data_volume:
        parts.append(data_volume_part())
    parts.append(install_part())
    if fleet_bucket:
        parts.append(CloudConfig(commands=(_run("shared-secrets.sh"),)))
    parts.append(configure)
    if fleet_bucket:
        parts.append(CloudConfig(commands=(_run("start-harbor.sh"),)))
    if extra is not None:
        parts.append(extra)
    document = parts[0]
    for part in parts[1:]:
        document = document.merge(part)
    return document
