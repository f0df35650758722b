"""``harbor-ha plan --json``: what a deploy would do, counted per resource type from terraform's own plan
(``saved_plan``: ``terraform plan -out`` read back with ``terraform show -json``, which rolling changes read
too).

    {"stack": "active-active", "changes": true,
     "totals": {"add": 3, "change": 1, "replace": 0, "destroy": 0},
     "by_resource_type": {"aws_instance": {"add": 1, "change": 1, "replace": 0, "destroy": 0}, ...},
     "resources": [{"address": "aws_instance.x", "action": "add"}, ...]}
"""

from __future__ import annotations

import json

from python_terraform import IsFlagged

ACTIONS = {("create",): "add", ("update",): "change", ("delete",): "destroy",
           ("delete", "create"): "replace", ("create", "delete"): "replace"}
KINDS = ("add", "change", "replace", "destroy")
PLAN_FILE = "harbor-ha.tfplan"


def summarize(plan: dict, stack: str) -> dict:
    """The summary of ``terraform show -json PLANFILE`` output; reads and no-ops are not changes."""
    by_type: dict[str, dict[str, int]] = {}
    resources = []
    for change in plan.get("resource_changes", []):
        action = ACTIONS.get(tuple(change.get("change", {}).get("actions", ())))
        if action is None:
            continue
        by_type.setdefault(change["type"], dict.fromkeys(KINDS, 0))[action] += 1
        resources.append({"address": change["address"], "action": action})
    totals = {kind: sum(counts[kind] for counts in by_type.values()) for kind in KINDS}
    return {"stack": stack, "changes": bool(resources), "totals": totals,
            "by_resource_type": dict(sorted(by_type.items())), "resources": resources}


def saved_plan(run, stream: bool = False) -> dict | None:
    """Terraform's plan of the synthesized, initialized ``run`` (a ``harbor_ha.stack_run.StackRun``) as JSON;
    None when nothing changes. ``stream`` shows terraform's own plan lines as it runs."""
    code, _ = run.terraform("plan", out=PLAN_FILE, ok=(0, 2), stream=stream)
    if code == 0:
        return None
    _, out = run.terraform("show_cmd", PLAN_FILE, json=IsFlagged, no_color=IsFlagged, stream=False)
    return json.loads(out)


def plan(run) -> dict:
    """Plan the synthesized, initialized ``run`` and summarize it."""
    return summarize(saved_plan(run) or {}, run.stack)
