"""What changing each setting does to a deployed stack: one table (``CHANGES``), the README's copy of it
(``change_table``, kept in step by a test), and the refusal of what cannot be applied, in one line per
setting before anything changes (``refusals``, against the settings recorded at the last ``harbor-ha up``).

Effects:
* ``in place``: Terraform updates the resource without stopping a node (or AWS does it online);
* ``rolled``: nodes are replaced or stopped, so ``harbor-ha up`` takes them one at a time, each waited for
  until it reports healthy (``harbor_ha.rolling``);
* ``refused``: a deployed stack cannot take it; the line says why and what to do instead;
* ``harbor-ha only``: changes how harbor-ha runs, nothing deployed.
"""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from harbor_ha.harbor_release import parse_release
from harbor_ha.settings import SETTING_NAMES, HarborHaSettings
from harbor_ha.target import terraform_state_dir

IN_PLACE = "in place"
ROLLED = "rolled"
REFUSED = "refused"
TOOLING = "harbor-ha only"
# Topologies whose Harbors keep their own database on the instance (no shared data tier).
STANDALONE = ("master-slaves", "master-master")


@dataclass(frozen=True)
class Change:
    """What a change of one setting does on a deployed stack."""

    effect: str
    """``in place``, ``rolled``, ``refused`` or ``harbor-ha only``."""
    does: str
    """What happens, or (refused) why it cannot."""
    instead: str = ""
    """Refused: what to do instead."""
    only_up: bool = False
    """A lower value than the deployed one is refused (``does`` says why)."""
    standalone_refused: str = ""
    """Why a rolled change is refused on the replication topologies, whose Harbors are standalone."""


_NEW_DEPLOYMENT = ("deploy a second deployment with the new value (another name), replicate the images into it "
                   "(harbor-ha replicate), move the clients, then take the old one down")
_STANDALONE_DATA = ("a standalone Harbor keeps its database on the instance, which a replacement would lose; "
                    "upgrade it in place by hand (Harbor's upgrade guide) or deploy a new one and replicate into it")

CHANGES: Mapping[str, Change] = {
    "name": Change(REFUSED, "every resource is named for it: a new name is a new deployment", _NEW_DEPLOYMENT),
    "target": Change(TOOLING, "each target keeps its own state: another target is another deployment, this one "
                     "stays as it is"),
    "region": Change(REFUSED, "every resource lives in the region", _NEW_DEPLOYMENT),
    "availability_zones": Change(REFUSED, "subnets and the fixed addresses are placed in the zones",
                                 _NEW_DEPLOYMENT),
    "harbor_version": Change(ROLLED, "Harbor servers are replaced one at a time at the new release after an RDS "
                             "snapshot; the first new one migrates the schema while the others wait (a lock per database and "
                             "release). A lower release is refused: "
                             "Harbor's schema migrations only go forward", only_up=True,
                             standalone_refused=_STANDALONE_DATA),
    "harbor_count": Change(IN_PLACE, "servers are added (they serve once healthy) or drained and removed; the "
                           "load balancers' pool follows without touching them"),
    "harbor_instance_type": Change(ROLLED, "each Harbor server is stopped, resized and started, one at a time"),
    "lb_instance_type": Change(ROLLED, "the BACKUP load balancer is resized first, then the VIP moves to it, "
                               "then the old MASTER is resized"),
    "ami_id": Change(ROLLED, "each Harbor server is replaced with the image one at a time, each load balancer "
                     "the way lb_instance_type says (the BACKUP first, then the VIP moves to it); set back to "
                     "none, the VMs keep their image and new ones get the latest", standalone_refused=_STANDALONE_DATA),
    "harbor_volume_gib": Change(IN_PLACE, "the root volumes grow online (EBS). Smaller is refused: EBS volumes "
                                "cannot shrink", only_up=True),
    "db_engine": Change(REFUSED, "another engine is another database", "export the data and import it into a "
                        "new deployment"),
    "db_engine_version": Change(IN_PLACE, "RDS upgrades the engine (Multi-AZ: the standby first, then a failover). "
                                "Lower is refused: RDS does not downgrade", only_up=True),
    "db_instance_class": Change(IN_PLACE, "RDS resizes the standby first and fails over (Multi-AZ)"),
    "db_allocated_storage_gib": Change(IN_PLACE, "RDS storage grows online. Smaller is refused: RDS storage "
                                       "cannot shrink", only_up=True),
    "db_backup_retention_days": Change(IN_PLACE, "RDS keeps automated backups that long"),
    "deletion_protection": Change(IN_PLACE, "the database and cache protection flags change"),
    "cache_node_type": Change(IN_PLACE, "ElastiCache scales the nodes online"),
    "cache_node_count": Change(IN_PLACE, "ElastiCache adds or removes replicas"),
    "redis_engine_version": Change(IN_PLACE, "ElastiCache upgrades the engine online. Lower is refused: "
                                   "ElastiCache does not downgrade", only_up=True),
    "hostname": Change(ROLLED, "Harbor servers are replaced one at a time with the new name in harbor.yml",
                       standalone_refused=_STANDALONE_DATA),
    "tls_certificate": Change(ROLLED, "Harbor servers are replaced one at a time with the new certificate",
                              standalone_refused=_STANDALONE_DATA),
    "ssh_cidrs": Change(IN_PLACE, "security-group rules change"),
    "admin_cidrs": Change(IN_PLACE, "security-group rules change"),
    "vpc_cidr": Change(REFUSED, "the network and every fixed address are in it", _NEW_DEPLOYMENT),
    "vpc_id": Change(REFUSED, "every subnet, address and instance is in the VPC", _NEW_DEPLOYMENT),
    "public_subnet_ids": Change(REFUSED, "the load balancers and the VIP holders are placed in them",
                                _NEW_DEPLOYMENT),
    "private_subnet_ids": Change(REFUSED, "the Harbor servers and the data tier are placed in them",
                                 _NEW_DEPLOYMENT),
    "replica_count": Change(REFUSED, "the master sets up replication to its replicas at its first boot, so a new "
                            "replica would get no images", "deploy with the new count under another name and "
                            "replicate into it, or add replicas by hand and run harbor-ha replicate on the master"),
    "secondary_region": Change(REFUSED, "the second Harbor lives in that region", _NEW_DEPLOYMENT),
    "node_storage": Change(REFUSED, "the images are stored there: another store starts empty", _NEW_DEPLOYMENT),
    "provider_mirror": Change(TOOLING, "where terraform installs the AWS provider from"),
    "tags": Change(IN_PLACE, "tags change on every resource"),
    "stacks": Change(TOOLING, "which stacks main.py builds"),
}


def change_table() -> str:
    """The README's table of what each change does."""
    rows = ["| setting | a change on a deployed stack | what happens |", "|---|---|---|"]
    for name in SETTING_NAMES:
        change = CHANGES[name]
        text = change.does + (f"; instead: {change.instead}" if change.instead else "")
        if change.standalone_refused:
            text += f". Refused on {' and '.join(STANDALONE)}: {change.standalone_refused}"
        rows.append(f"| `{name}` | {change.effect} | {text}. |")
    return "\n".join(rows)


def _lower(old: Any, new: Any) -> bool:
    if isinstance(old, int) and isinstance(new, int):
        return new < old
    old_v, new_v = parse_release(str(old)), parse_release(str(new))
    if old_v and new_v:
        return new_v < old_v
    parts = [tuple(int(p) for p in str(v).split(".") if p.isdigit()) for v in (old, new)]
    return bool(parts[0] and parts[1]) and parts[1] < parts[0]


def refusals(stack: str, deployed: Mapping[str, Any], settings: HarborHaSettings) -> list[str]:
    """One line per setting whose change from ``deployed`` (the recorded settings) cannot be applied."""
    lines = []
    for name in SETTING_NAMES:
        if name in deployed:
            old = deployed[name]
        elif deployed and name in _PLAIN_DEFAULTS:
            # Recorded before harbor-ha had this setting: the deployment was made with its default.
            old = _PLAIN_DEFAULTS[name]
        else:
            continue
        new = _comparable(getattr(settings, name))
        if old == new:
            continue
        change = CHANGES[name]
        where = f"{name} = {json.dumps(new)} (deployed: {json.dumps(old)}): refused on the deployed {stack}"
        if change.effect == REFUSED:
            lines.append(f"{where}: {change.does}; instead: {change.instead}")
        elif change.only_up and _lower(old, new):
            lines.append(f"{where}: lower than deployed. {change.does}")
        elif change.standalone_refused and stack in STANDALONE:
            lines.append(f"{where}: {change.standalone_refused}")
    return lines


# The settings whose default is a plain value (not derived from other settings at build time).
_PLAIN_DEFAULTS = {f.name: f.default for f in fields(HarborHaSettings) if f.default not in (MISSING, None)}


def _comparable(value: Any) -> Any:
    """A setting's value as JSON keeps it (tuples become lists)."""
    return json.loads(json.dumps(value))


def deployed_settings(settings: HarborHaSettings) -> dict[str, Any]:
    """What a deployment is recorded with: the settings that describe deployed resources."""
    return {name: _comparable(getattr(settings, name)) for name in SETTING_NAMES
            if CHANGES[name].effect != TOOLING}


def record_path(project_dir: str | os.PathLike | None, target: str, stack: str) -> Path:
    """Beside the stack's Terraform state: ``.harbor-ha/state/<target>/<stack>.settings.json``."""
    return terraform_state_dir(project_dir, target) / f"{stack}.settings.json"


def recorded(project_dir: str | os.PathLike | None, target: str, stack: str) -> dict[str, Any]:
    """The settings of the last successful ``harbor-ha up`` of ``stack`` (empty if none)."""
    path = record_path(project_dir, target, stack)
    return json.loads(path.read_text()) if path.is_file() else {}


def record(project_dir: str | os.PathLike | None, stack: str, settings: HarborHaSettings) -> None:
    path = record_path(project_dir, settings.target, stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(deployed_settings(settings), indent=1, sort_keys=True) + "\n")


def forget(project_dir: str | os.PathLike | None, target: str, stack: str) -> None:
    """After ``down``: nothing is deployed any more, every setting is free again."""
    record_path(project_dir, target, stack).unlink(missing_ok=True)


class ChangeRefused(ValueError):
    """Settings that the deployed stack cannot take; ``str()`` has one line per setting."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))
