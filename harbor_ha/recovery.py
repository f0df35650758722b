"""Recovery after a crash, and what ``down`` leaves: compare the stack's resources in the target (found by
tags and names, ``harbor_ha.inventory``) with its Terraform state.

An apply that dies (killed, machine lost) leaves resources that exist but that the state does not know: the
calls in flight and what was made since the state was last written. The next apply would fail on their
names (DBInstanceAlreadyExists ...) or make second copies. ``adopt_orphans`` imports each one that matches
exactly one resource of the stack's configuration missing from the state (by its ``Name`` tag, identifier,
description or name prefix), and names the others with the commands that import or delete them.
"""

from __future__ import annotations

import json
from typing import Callable

from harbor_ha.attached_orphans import planned_matches, unsaved_attached
from harbor_ha.inventory import EC2_LISTS, Found, stack_inventory
from harbor_ha.stack_run import DeployError
from harbor_ha.verify import Live, state_resources

# Per Terraform type: the configuration attributes whose literal value is the inventory's key, first found wins.
CONFIG_KEYS = {
    "aws_db_instance": ("identifier",), "aws_db_subnet_group": ("name",),
    "aws_db_parameter_group": ("name_prefix", "name"),
    "aws_elasticache_replication_group": ("replication_group_id",), "aws_elasticache_subnet_group": ("name",),
    "aws_kms_key": ("description",), "aws_kms_alias": ("name",),
    "aws_secretsmanager_secret": ("name_prefix", "name"), "aws_s3_bucket": ("bucket_prefix", "bucket"),
    "aws_iam_role": ("name_prefix", "name"), "aws_iam_instance_profile": ("name_prefix", "name"),
    "aws_route53_zone": ("name",), "aws_security_group": ("name",),
}


def _config_key(kind: str, values: dict) -> str:
    """The key ``harbor_ha.inventory`` finds the resource by: an EC2 resource's Name tag where it has one."""
    name = (values.get("tags") or {}).get("Name")
    if isinstance(name, str) and kind in EC2_LISTS:
        return name
    for attribute in CONFIG_KEYS.get(kind, ()):
        if isinstance(values.get(attribute), str):
            return values[attribute]
    return name if isinstance(name, str) else ""


# Terraform types that adopt what AWS made with the VPC: in the target they are of the second type.
ADOPTING_TYPES = {"aws_default_security_group": "aws_security_group", "aws_default_route_table": "aws_route_table"}


def _known_ids(state: dict) -> tuple[set[str], set[str]]:
    """(``<type> <id>`` of every resource the state holds, and every ARN; the addresses it holds). Ids per type:
    a database and its subnet group share a name."""
    ids, addresses = set(), set()
    for resource in state_resources(state):
        addresses.add(resource["address"])
        values = resource.get("values") or {}
        kind = ADOPTING_TYPES.get(resource["type"], resource["type"])
        ids.update(f"{kind} {values[k]}" for k in ("id", "name", "identifier", "bucket") if values.get(k))
        if values.get("arn"):
            ids.add(values["arn"])
    return ids, addresses


def orphans(run, state: dict) -> list[Found]:
    """Live resources of ``run``'s stack (not kept-after-deletion ones) that its ``state`` does not hold."""
    ids, _ = _known_ids(state)
    return [f for f in stack_inventory(run).all()
            if not (f.kept or f.made_by_node) and f"{f.kind} {f.import_id}" not in ids and f.arn not in ids]


def _unmanaged_addresses(run, state: dict) -> dict[tuple[str, str], list[str]]:
    """``(type, key) -> addresses`` of the configuration's resources that the state lacks."""
    _, held = _known_ids(state)
    config = json.loads((run.workdir / "cdk.tf.json").read_text()).get("resource", {})
    found: dict[tuple[str, str], list[str]] = {}
    for kind, resources in config.items():
        for logical, values in resources.items():
            key = _config_key(kind, values)
            if key and "${" not in key and f"{kind}.{logical}" not in held:
                found.setdefault((kind, key), []).append(f"{kind}.{logical}")
    return found


# Import blocks (Terraform >= 1.5) rather than ``terraform import``: the command evaluates the whole configuration
# with every resource missing from the state as null, and fails on the first data source that builds a string
# from one (an IAM policy naming a bucket the cut-short apply never made). A plan imports and creates together.
IMPORTS_FILE = "harbor-ha-imports.tf.json"


def adopt_orphans(run, report: Callable[[str], None] = print) -> list[Found]:
    """Import the stack's orphans that match one resource of its configuration; report every orphan. Returns
    the named orphans left unmatched (named in the report with how to import or delete them).

    The imported resources are applied alone, before the caller's apply or destroy: an imported database or
    cache often differs from its configuration, and values other resources read from it (user-data holds its
    endpoint) change when it is updated, which Terraform refuses within one apply ("inconsistent final plan").
    The rules, routes and associations of the groups and tables then in the state follow
    (``harbor_ha.attached_orphans``)."""
    state = run.state()
    left = orphans(run, state)
    unmatched = []
    if left:
        report(f"harbor-ha: {len(left)} resources of stack {run.stack} exist in the target but not in its state "
               "(an earlier apply or destroy was cut short); importing them:")
        addresses = _unmanaged_addresses(run, state)
        imports = []
        for orphan in left:
            candidates = addresses.get((orphan.kind, orphan.key), [])
            if len(candidates) != 1:
                unmatched.append(orphan)
                continue
            addresses.pop((orphan.kind, orphan.key))
            imports.append({"to": candidates[0], "id": orphan.import_id})
            report(f"  importing {orphan.describe()} as {candidates[0]}")
        if imports:
            _apply_imports(run, imports, report)
            state = run.state()
        for orphan in unmatched:
            report(f"  not imported, {orphan.describe()}: it matches no single resource of the configuration; "
                   f"import it with 'terraform -chdir={run.workdir} import <address> {orphan.import_id}' or "
                   f"delete it (AWS console or CLI, region {orphan.region})")
    _adopt_attached(run, state, report)
    return unmatched


def _adopt_attached(run, state: dict, report: Callable[[str], None]) -> None:
    unsaved = unsaved_attached(Live(run.target), state)
    if not unsaved:
        return
    report(f"harbor-ha: {len(unsaved)} security group rules, routes or route table associations of stack "
           f"{run.stack} exist in the target but not in its state; importing those its configuration makes:")
    imports = planned_matches(run, unsaved)
    for block in imports:
        report(f"  importing {block['id']} as {block['to']}")
    if imports:
        _apply_imports(run, imports, report)
    imported = {block["id"] for block in imports}
    for attached in unsaved:
        if attached.import_id not in imported:
            report(f"  not imported, {attached.kind} {attached.import_id}: the configuration makes no such "
                   f"{attached.kind}; delete it if nothing else needs it, or import it with "
                   f"'terraform -chdir={run.workdir} import <address> {attached.import_id}'")


def _apply_imports(run, imports: list[dict], report: Callable[[str], None]) -> None:
    blocks = run.workdir / IMPORTS_FILE
    blocks.write_text(json.dumps({"import": imports}, indent=2))
    try:
        run.terraform("apply", skip_plan=True, target=[block["to"] for block in imports])
    finally:
        blocks.unlink()
    report(f"harbor-ha: imported {len(imports)} resources and brought them in line with the configuration")


def before_apply(run) -> None:
    """What ``up`` does before its apply: refuse to rename what holds data, import what a cut-short apply left."""
    refuse_renaming_data(run)
    adopt_orphans(run)


def remove_node_made_secrets(run, report: Callable[[str], None] = print) -> list[Found]:
    """Schedule the deletion of the secrets the stack's nodes made at boot (Harbor's shared secrets), with the
    recovery window of the stack's KMS keys (30 days): both can be restored together until then."""
    inventory = stack_inventory(run)
    removed = []
    for secret in inventory.all():
        if secret.made_by_node and not secret.kept:
            inventory.live("secretsmanager", secret.region).delete_secret(SecretId=secret.arn,
                                                                          RecoveryWindowInDays=30)
            report(f"harbor-ha: scheduled the deletion of {secret.key}, made by a node at boot (restorable "
                   "with its KMS key for 30 days)")
            removed.append(secret)
    return removed


def report_leftovers(run, report: Callable[[str], None] = print) -> list[Found]:
    """After a destroy: list what the target still holds of the stack, kept by AWS by design or not; returns
    what is not kept by design (nothing, when the destroy went well)."""
    found = stack_inventory(run).all()
    for item in found:
        report(f"harbor-ha: left in the target: {item.describe()}: "
               + (item.kept if item.kept else "not deleted by terraform; delete it (AWS console or CLI)"))
    return [item for item in found if not item.kept]


# Attributes that name a resource holding data: a new value replaces the resource, and its data is lost.
DATA_NAMES = {"aws_db_instance": "identifier", "aws_elasticache_replication_group": "replication_group_id",
              "aws_s3_bucket": "bucket_prefix"}


def refuse_renaming_data(run) -> None:
    """Raise ``DeployError`` before any change when the configuration renames a deployed database, cache or
    bucket (a harbor-ha version whose names lacked the stack deployed it): the apply would replace it."""
    config = json.loads((run.workdir / "cdk.tf.json").read_text()).get("resource", {})
    renamed = []
    for resource in state_resources(run.state()):
        attribute = DATA_NAMES.get(resource["type"])
        wanted = config.get(resource["type"], {}).get(resource["name"], {}).get(attribute) if attribute else None
        held = (resource.get("values") or {}).get(attribute)
        if isinstance(wanted, str) and held and held != wanted:
            renamed.append(f"{resource['type']} {held!r} (now named {wanted!r})")
    if renamed:
        raise DeployError(
            f"stack {run.stack} holds " + ", ".join(renamed) + ", made by a harbor-ha version whose names lacked "
            "the stack; applying would replace them and lose their data, so nothing was changed. Keep that "
            "version for this deployment.")
