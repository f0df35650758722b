"""One stack's Terraform working directory: synthesize it with cdktf, then drive terraform (through
python-terraform) in ``cdktf.out/stacks/<stack>``, where ``cdktf deploy`` runs it too, so both share the same
state. ``harbor_ha.deploy`` builds the operations (deploy, plan, destroy ...) on it; verify, the inventory,
recovery and rolling changes read and change a stack through it.

Every terraform run gets ``terraform_env()``: the offline provider mirror and the plugin cache.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from pathlib import Path

from python_terraform import IsFlagged, Terraform

from harbor_ha import terraform_run
from harbor_ha.local import emulator
from harbor_ha.settings import HarborHaSettings, STACK_NAMES, load_settings
from harbor_ha.target import Target, terraform_state_dir
from harbor_ha.terraform_config import terraform_env
from harbor_ha.terraform_run import signal_name

MASK = "(sensitive)"
# Streamed with a progress line (harbor_ha.progress) instead of terraform's own lines.
PROGRESS_COMMANDS = ("apply", "destroy")


class DeployError(RuntimeError):
    """A terraform step failed; ``str()`` says which."""


class Interrupted(DeployError):
    """harbor-ha got SIGINT or SIGTERM while terraform ran; terraform has ended. ``signal`` is the number
    received; ``str()`` says where the stack stopped and which command continues it."""

    def __init__(self, message: str, signal: int) -> None:
        super().__init__(message)
        self.signal = signal


class CredentialsMissing(DeployError):
    """Target ``aws`` without working credentials; ``str()`` says how to get them."""


def resolve_target(settings: HarborHaSettings, project_dir: str | os.PathLike | None = None) -> Target:
    """The target of ``settings``; for ``local`` the emulator is started (or reused), for ``aws`` the
    account comes from STS GetCallerIdentity, and missing credentials end in a message saying how to
    get them."""
    if settings.target == "local":
        return Target("local", settings.region, emulator.ACCOUNT_ID, emulator.endpoint(project_dir))
    return Target("aws", settings.region, _aws_account(settings.region))


def _aws_account(region: str) -> str:
    import boto3
    import botocore.exceptions

    try:
        # A session of its own: boto3's default one keeps the credentials it resolved first, and the
        # environment may have changed since (a library user's process, or tests).
        return boto3.session.Session().client("sts", region_name=region).get_caller_identity()["Account"]
    except botocore.exceptions.EndpointConnectionError as error:
        raise DeployError(f"target 'aws': AWS cannot be reached from here ({error}). Check the network, DNS "
                          "and any proxy (HTTPS_PROXY), or deploy on the local emulator with target 'local' "
                          "(HARBOR_HA_TARGET=local).") from None
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
        streamed to this process's stdout when streaming (then stdout is not returned). An interrupt of
        harbor-ha stops terraform gracefully (``harbor_ha.terraform_run``) and raises ``Interrupted``."""
        stream = self.stream if stream is None else stream
        if stream and command in PROGRESS_COMMANDS:
            return self._terraform_with_progress(command, *args, ok=ok, **options)
        argv = getattr(_CommandLine(working_dir=str(self.workdir)), command)(*args, **options)
        finished = terraform_run.run(argv, cwd=str(self.workdir), capture=not stream,
                                     env=terraform_env(self.settings.provider_mirror, self.project_dir))
        return self._checked(command, finished, ok, finished.err.strip())

    def _terraform_with_progress(self, command: str, *args, ok, **options) -> tuple[int, str]:
        """``terraform <command> -json``, its progress shown by harbor_ha.progress instead of its raw lines."""
        from harbor_ha.progress import follow

        for spelling in ("skip_plan", "force"):  # python-terraform's ways of asking for -auto-approve
            options.pop(spelling, None)
        options.update(input=False, auto_approve=IsFlagged, json=IsFlagged, no_color=IsFlagged)
        argv = _CommandLine().generate_cmd_string(command, *args, **options)
        progress = follow(argv, cwd=self.workdir, env=terraform_env(self.settings.provider_mirror, self.project_dir),
                          label=f"{command} {self.stack}")
        return self._checked(command, progress.finished, ok, "\n".join(progress.errors))

    def _checked(self, command: str, finished, ok, errors: str) -> tuple[int, str]:
        """``(exit code, stdout)`` of a finished terraform run; ``Interrupted`` or ``DeployError`` otherwise."""
        if finished.received:
            raise Interrupted(self._interrupted(command, finished), finished.received)
        if finished.code not in ok:
            raise DeployError(self._failed(command, finished, errors))
        return finished.code, finished.out

    def _failed(self, command: str, finished, errors: str) -> str:
        what = f"terraform {command.removesuffix('_cmd')} of stack {self.stack}"
        if finished.code < 0:
            return (f"{what} was killed by {signal_name(-finished.code)} before it finished: "
                    f"{self._progress()}; what it made but had not saved yet is found by the next "
                    f"'harbor-ha {self._continue_with(command)} {self.stack}', which continues it")
        detail = f":\n{errors}" if errors else " (its messages are above)"
        return f"{what} failed with exit code {finished.code}{detail}"

    def _interrupted(self, command: str, finished) -> str:
        how = f"was killed after {terraform_run.GRACE_S:.0f} s" if finished.killed else "stopped gracefully"
        what = f"terraform {command.removesuffix('_cmd')} of stack {self.stack}"
        line = f"interrupted ({signal_name(finished.received)}): {what} {how}"
        if command in ("apply", "destroy", "import"):
            line += f", {self._progress()}; continue with: harbor-ha {self._continue_with(command)} {self.stack}"
        return line

    @staticmethod
    def _continue_with(command: str) -> str:
        return "down" if command == "destroy" else "up"

    def _progress(self) -> str:
        """How far the stack got: resources in its state file against resources in the synthesized stack."""
        state = _read_json(self.state_file)
        saved = sum(len(r.get("instances", [])) for r in state.get("resources", []) if r.get("mode") == "managed")
        planned = sum(len(named) for named in _read_json(self.workdir / "cdk.tf.json").get("resource", {}).values())
        return f"{saved} of {planned or '?'} resources in its state"

    @property
    def state_file(self) -> Path:
        return terraform_state_dir(self.project_dir, self.settings.target) / f"{self.stack}.tfstate"

    def init(self) -> None:
        self._set_aside_a_cut_short_state()
        self.terraform("init", stream=False)

    def _set_aside_a_cut_short_state(self) -> None:
        """A terraform killed while it wrote the state file leaves the file cut short (the local backend writes
        it in place) and every later terraform run stops on it; one still running holds the file's lock. Keep it aside and put back terraform's backup of
        the state before that run (none after a first apply: no state); what the run made since is imported by
        ``harbor_ha.recovery`` like any other orphan."""
        try:
            text = self.state_file.read_text()
        except FileNotFoundError:
            return
        if not text.strip() or "version" in _json_object(text) or _locked(self.state_file):
            return
        aside = self.state_file.with_name(f"{self.state_file.name}.cut-short-{time.strftime('%Y%m%dT%H%M%S')}")
        self.state_file.rename(aside)
        backup = self.state_file.with_name(f"{self.state_file.name}.backup")
        restored = backup.is_file() and "version" in _json_object(backup.read_text())
        if restored:
            shutil.copyfile(backup, self.state_file)
        print(f"harbor-ha: the state of stack {self.stack} was cut short while terraform wrote it (kept as "
              f"{aside}); " + ("put back terraform's backup of the state before that run" if restored else
                               "no earlier state to put back (it was the stack's first apply)")
              + "; what that run made is imported next")

    def ready(self) -> "StackRun":
        """Synthesize and init unless an earlier run did: enough for reading state and outputs."""
        if not (self.workdir / ".terraform").is_dir():
            self.synth()
            self.init()
        else:
            self._set_aside_a_cut_short_state()
        return self

    def outputs(self, mask_sensitive: bool = False) -> dict:
        _, out = self.terraform("output_cmd", json=IsFlagged, stream=False)
        raw = json.loads(out or "{}")
        return {name: MASK if mask_sensitive and item.get("sensitive") else item["value"]
                for name, item in raw.items()}

    def state(self) -> dict:
        """``terraform show -json``: the deployed resources with their attributes."""
        _, out = self.terraform("show_cmd", json=IsFlagged, no_color=IsFlagged, stream=False)
        return json.loads(out or "{}")


def _locked(path: Path) -> bool:
    """Whether a terraform holds ``path``'s lock (the local backend's fcntl lock): a state file it is writing
    reads as cut short, and must be left alone."""
    with path.open("r+") as state:
        try:
            fcntl.lockf(state, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.lockf(state, fcntl.LOCK_UN)
    return False


def _read_json(path: Path) -> dict:
    try:
        return _json_object(path.read_text())
    except OSError:
        return {}


def _json_object(text: str) -> dict:
    """``text`` as a JSON object, or ``{}`` when it is not one (cut short, empty)."""
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


class _CommandLine(Terraform):
    """python-terraform's command lines (its defaults for apply, plan, destroy ...), not run: harbor-ha runs
    them itself (``harbor_ha.terraform_run``)."""

    def cmd(self, cmd, *args, **kwargs):
        kwargs.pop("capture_output", None)
        if not kwargs.get("var"):  # python-terraform would write an empty variables file, removed only by cmd()
            kwargs.pop("var", None)
        return self.generate_cmd_string(cmd, *args, **kwargs)
