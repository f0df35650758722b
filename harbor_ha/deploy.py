"""Deploy, inspect and destroy one harbor-ha stack from Python: synth it with cdktf, then drive terraform
(through python-terraform) in ``cdktf.out/stacks/<stack>``, where ``cdktf deploy`` runs it too, so both
share the same state.

    from harbor_ha.deploy import deploy, outputs, destroy, plan_is_empty
    deploy("active-active")            # -> {"vip_address": "...", ...}

Every terraform run gets ``terraform_env()``: the offline provider mirror and the plugin cache. Terraform
is idempotent, so re-running ``deploy`` after a failed apply finishes the job.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harbor_ha.settings import HarborHaSettings, STACK_NAMES, load_settings
from harbor_ha.terraform_config import terraform_env

MASK = "(sensitive)"
# Streamed with a progress line (harbor_ha.progress) instead of terraform's own lines.
PROGRESS_COMMANDS = ("apply", "destroy")


class DeployError(RuntimeError):
    """A terraform step failed; ``str()`` says which."""


class CredentialsMissing(DeployError):
    """Target ``aws`` without working credentials; ``str()`` says how to get them."""


@dataclass(frozen=True)
class Target:
    """Where a deployment goes, as shown before any change."""

    name: str
    region: str
    account: str
    endpoint: str = ""

    def describe(self) -> str:
        where = f" at {self.endpoint} (local AWS emulator)" if self.endpoint else ""
        return f"target {self.name}{where}, region {self.region}, account {self.account}"


def resolve_target(settings: HarborHaSettings, project_dir: str | os.PathLike | None = None) -> Target:
    """The target of ``settings``; for ``local`` the emulator is started (or reused), for ``aws`` the
    account comes from STS GetCallerIdentity, and missing credentials end in a message saying how to
    get them."""
    if settings.target == "local":
        from harbor_ha.local import emulator
        from harbor_ha.target import LOCAL_ENDPOINT_ENV

        endpoint = os.environ.get(LOCAL_ENDPOINT_ENV) or emulator.start(project_dir)[0].endpoint
        return Target("local", settings.region, emulator.ACCOUNT_ID, endpoint)
    return Target("aws", settings.region, _aws_account(settings.region))


def _aws_account(region: str) -> str:
    import boto3
    import botocore.exceptions

    try:
        return boto3.client("sts", region_name=region).get_caller_identity()["Account"]
    except (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError,
            botocore.exceptions.ProfileNotFound, botocore.exceptions.TokenRetrievalError,
            botocore.exceptions.SSOError, botocore.exceptions.ClientError) as error:
        raise CredentialsMissing(
            f"target 'aws' needs AWS credentials, and none work here ({error}). Get them with "
            "'aws configure' (access keys), 'export AWS_PROFILE=<profile>' for a named profile, or "
            "'aws sso login --profile <profile>' for IAM Identity Center; or deploy on the local emulator "
            "with target 'local' (HARBOR_HA_TARGET=local).") from None


class StackRun:
    """One stack's terraform working directory and the settings it was synthesized with."""

    def __init__(self, stack: str, settings: HarborHaSettings | None = None,
                 project_dir: str | os.PathLike | None = None, stream: bool = True) -> None:
        if stack not in STACK_NAMES:
            raise ValueError(f"stack = {stack!r}: allowed is one of {', '.join(STACK_NAMES)}")
        self.project_dir = Path(project_dir or os.getcwd()).resolve()
        base = settings or load_settings(self.project_dir)
        self.settings = base.replace(stacks=(stack,))
        # Before any emulator, synth or terraform: what this stack cannot honour.
        self.settings.check_for(stack)
        self.stack = stack
        self.stream = stream
        self.outdir = self.project_dir / "cdktf.out"
        self.workdir = self.outdir / "stacks" / stack
        self._target: Target | None = None

    @property
    def target(self) -> Target:
        if self._target is None:
            self._target = resolve_target(self.settings, self.project_dir)
        return self._target

    def synth(self) -> Path:
        """Write ``cdktf.out/stacks/<stack>/cdk.tf.json`` for the target; returns the directory."""
        from harbor_ha.app import build_app

        build_app(self.settings, outdir=str(self.outdir), local_endpoint=self.target.endpoint or None).synth()
        return self.workdir

    def terraform(self, command: str, *args, stream: bool | None = None, ok=(0,), **options) -> tuple[int, str]:
        """Run ``terraform <command>`` in the stack directory; returns (exit code, stdout). Output is
        streamed to this process's stdout when streaming (then stdout is not returned)."""
        from python_terraform import Terraform

        stream = self.stream if stream is None else stream
        if stream and command in PROGRESS_COMMANDS:
            return self._terraform_with_progress(command, *args, ok=ok, **options)
        if stream:
            options["capture_output"] = False
        with _environ(terraform_env(self.settings.provider_mirror, self.project_dir)):
            code, out, err = getattr(Terraform(working_dir=str(self.workdir)), command)(*args, **options)
        if code not in ok:
            detail = f":\n{err.strip()}" if err else " (its messages are above)"
            raise DeployError(f"terraform {command} of stack {self.stack} failed with exit code {code}{detail}")
        return code, out or ""

    def _terraform_with_progress(self, command: str, *args, ok, **options) -> tuple[int, str]:
        """``terraform <command> -json``, its progress shown by harbor_ha.progress instead of its raw lines."""
        from python_terraform import IsFlagged, Terraform

        from harbor_ha.progress import follow

        for spelling in ("skip_plan", "force"):  # python-terraform's ways of asking for -auto-approve
            options.pop(spelling, None)
        options.update(input=False, auto_approve=IsFlagged, json=IsFlagged, no_color=IsFlagged)
        argv = Terraform().generate_cmd_string(command, *args, **options)
        progress = follow(argv, cwd=self.workdir, env=terraform_env(self.settings.provider_mirror, self.project_dir),
                          label=f"{command} {self.stack}")
        if progress.returncode not in ok:
            raise DeployError(f"terraform {command} of stack {self.stack} failed with exit code "
                              f"{progress.returncode}" + "".join(f"\n{e}" for e in progress.errors))
        return progress.returncode, ""

    def init(self) -> None:
        self.terraform("init", stream=False)

    def ready(self) -> "StackRun":
        """Synthesize and init unless an earlier run did: enough for reading state and outputs."""
        if not (self.workdir / ".terraform").is_dir():
            self.synth()
            self.init()
        return self

    def outputs(self, mask_sensitive: bool = False) -> dict:
        _, out = self.terraform("output_cmd", json=_flag(), stream=False)
        raw = json.loads(out or "{}")
        return {name: MASK if mask_sensitive and item.get("sensitive") else item["value"]
                for name, item in raw.items()}

    def state(self) -> dict:
        """``terraform show -json``: the deployed resources with their attributes."""
        _, out = self.terraform("show_cmd", json=_flag(), no_color=_flag(), stream=False)
        return json.loads(out or "{}")


def _flag():
    from python_terraform import IsFlagged

    return IsFlagged


@contextmanager
def _environ(env: dict[str, str]):
    # python-terraform 0.10.1 runs terraform with a copy of os.environ and takes no env argument.
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def prepare(stack: str, settings: HarborHaSettings | None = None, project_dir: str | os.PathLike | None = None,
            stream: bool = True) -> StackRun:
    """Synthesize ``stack`` for its target and run ``terraform init``."""
    run = StackRun(stack, settings, project_dir, stream)
    run.synth()
    run.init()
    return run


def deploy(stack: str, settings: HarborHaSettings | None = None, *, project_dir: str | os.PathLike | None = None,
           stream: bool = True) -> dict:
    """Create or update ``stack``; returns its outputs (name -> value)."""
    run = prepare(stack, settings, project_dir, stream)
    run.terraform("apply", skip_plan=True)
    return run.outputs()


def outputs(stack: str, settings: HarborHaSettings | None = None, *, project_dir: str | os.PathLike | None = None,
            mask_sensitive: bool = False) -> dict:
    """The outputs of the deployed ``stack`` (sensitive values replaced by ``(sensitive)`` if asked)."""
    return StackRun(stack, settings, project_dir, stream=False).ready().outputs(mask_sensitive)


def destroy(stack: str, settings: HarborHaSettings | None = None, *, project_dir: str | os.PathLike | None = None,
            stream: bool = True) -> None:
    """Delete every resource of ``stack``."""
    from python_terraform import IsNotFlagged

    run = prepare(stack, settings, project_dir, stream)
    # python-terraform adds the -force flag that terraform 0.15 removed; -auto-approve replaces it.
    run.terraform("destroy", force=IsNotFlagged, auto_approve=_flag())


def plan_is_empty(stack: str, settings: HarborHaSettings | None = None, *,
                  project_dir: str | os.PathLike | None = None, stream: bool = False) -> bool:
    """True if the deployed ``stack`` matches its code (``terraform plan -detailed-exitcode`` = 0)."""
    run = prepare(stack, settings, project_dir, stream)
    code, _ = run.terraform("plan", ok=(0, 2))
    return code == 0
