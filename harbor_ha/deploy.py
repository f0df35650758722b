"""Deploy, plan, inspect and destroy one harbor-ha stack from Python: what ``harbor-ha up / plan / outputs /
down`` do, written once here (the CLI only parses arguments and prints).

    from harbor_ha.deploy import deploy, outputs, destroy, plan_is_empty
    deploy("active-active")            # -> {"vip_address": "...", ...}

Every operation that may change something first says (``say``) what it does to which stack on which target,
resolving the target before anything is synthesized. Terraform is idempotent, so re-running ``deploy`` after a
failed apply finishes the job.
"""

from __future__ import annotations

import os
from typing import Callable

from python_terraform import IsFlagged, IsNotFlagged

from harbor_ha.changes import forget
from harbor_ha.inventory import Found
from harbor_ha.plan_summary import plan as summarized_plan
from harbor_ha.recovery import adopt_orphans, remove_node_made_secrets, report_leftovers
from harbor_ha.rolling import RollOptions, RollPlan, check_changes, plan_changes, up
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stack_run import StackRun

Say = Callable[[str], None]
ProjectDir = str | os.PathLike | None


def _announced(stack: str, settings: HarborHaSettings | None, project_dir: ProjectDir, stream: bool, say: Say,
               action: str) -> StackRun:
    """``stack``'s run, its target resolved (the emulator started, the AWS account read) and named."""
    run = StackRun(stack, settings, project_dir, stream)
    say(f"{action} {stack} on {run.target.describe()}")
    return run


def deploy(stack: str, settings: HarborHaSettings | None = None, *, project_dir: ProjectDir = None,
           stream: bool = True, options: RollOptions | None = None, say: Say = print,
           mask_sensitive: bool = False) -> dict:
    """Create or update ``stack`` the way ``harbor_ha.rolling.up`` does (refused changes stop before anything,
    what a cut-short apply made is imported first, the members of a redundant group change one at a time);
    returns its outputs (name -> value, sensitive ones replaced by ``(sensitive)`` if asked)."""
    run = _announced(stack, settings, project_dir, stream, say, "deploying")
    up(run, options, say)
    return run.outputs(mask_sensitive)


def _planned(stack: str, settings: HarborHaSettings | None, project_dir: ProjectDir, stream: bool,
             say: Say) -> tuple[StackRun, tuple[str, str] | None]:
    """A run synthesized and initialized for a plan, after the changes it cannot take were refused."""
    run = _announced(stack, settings, project_dir, stream, say, "planning")
    versions = check_changes(run)
    run.synth()
    run.init()
    return run, versions


def plan(stack: str, settings: HarborHaSettings | None = None, *, project_dir: ProjectDir = None,
         stream: bool = True, say: Say = print) -> RollPlan | None:
    """What ``deploy`` would change, as the roll it would run; None when nothing changes. A change the deployed
    stack cannot take raises ``harbor_ha.changes.ChangeRefused`` before anything is synthesized."""
    run, versions = _planned(stack, settings, project_dir, stream, say)
    return plan_changes(run, versions, stream=stream)


def plan_summary(stack: str, settings: HarborHaSettings | None = None, *, project_dir: ProjectDir = None,
                 say: Say = print) -> dict:
    """``plan`` counted per resource type (``harbor_ha.plan_summary``); terraform's own lines are not shown."""
    run, _ = _planned(stack, settings, project_dir, False, say)
    return summarized_plan(run)


def plan_is_empty(stack: str, settings: HarborHaSettings | None = None, *, project_dir: ProjectDir = None,
                  stream: bool = False, say: Say = print) -> bool:
    """True if the deployed ``stack`` matches its code: a plan right after ``deploy`` is empty."""
    return plan(stack, settings, project_dir=project_dir, stream=stream, say=say) is None


def outputs(stack: str, settings: HarborHaSettings | None = None, *, project_dir: ProjectDir = None,
            mask_sensitive: bool = False) -> dict:
    """The outputs of the deployed ``stack`` (sensitive values replaced by ``(sensitive)`` if asked). On the
    local target a state whose emulator is gone is refused (``EmulatorError``), as every other command does."""
    run = StackRun(stack, settings, project_dir, stream=False)
    run.target  # noqa: B018 - resolving the target checks that the deployment still exists there
    return run.ready().outputs(mask_sensitive)


def destroy(stack: str, settings: HarborHaSettings | None = None, *, project_dir: ProjectDir = None,
            stream: bool = True, say: Say = print) -> list[Found]:
    """Delete every resource of ``stack``: also what an interrupted apply made without saving it in the state
    (imported first) and the secrets its nodes made at boot; then forget the settings it was deployed with.
    Reports what the target still holds of the stack afterwards (what AWS keeps by design, such as KMS keys
    pending deletion, and anything not deleted) and returns what is not kept by design."""
    run = _announced(stack, settings, project_dir, stream, say, "destroying")
    run.synth()
    run.init()
    adopt_orphans(run)
    # python-terraform adds the -force flag that terraform 0.15 removed; -auto-approve replaces it.
    run.terraform("destroy", force=IsNotFlagged, auto_approve=IsFlagged)
    remove_node_made_secrets(run)
    left = report_leftovers(run)
    forget(run.project_dir, run.settings.target, stack)
    return left
