"""Where a deployment goes and where harbor-ha keeps its local files: the state directory and the Terraform
state. No cdktf import here, so the CLI can answer quickly."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

# Credentials the emulator accepts; they open nothing anywhere else.
LOCAL_ACCESS_KEY = "harbor-ha-local"
LOCAL_ENDPOINT_ENV = "HARBOR_HA_LOCAL_ENDPOINT"


@dataclass(frozen=True)
class Target:
    """Where a deployment goes, as shown before any change."""

    name: str
    region: str
    account: str
    endpoint: str = ""
    """The local emulator's URL; ``""`` for AWS."""

    def describe(self) -> str:
        where = f" at {self.endpoint} (local AWS emulator)" if self.endpoint else ""
        return f"target {self.name}{where}, region {self.region}, account {self.account}"


# Where the stacks keep Terraform state, in the project: ``<this>/<target>/<stack id>.tfstate``.
TERRAFORM_STATE = Path(".harbor-ha") / "state"


def state_dir(project_dir: str | os.PathLike | None = None) -> Path:
    """Where harbor-ha keeps the emulator's files (pid, endpoint, data): ``$HARBOR_HA_STATE_DIR`` or
    ``.harbor-ha`` in the project."""
    configured = os.environ.get("HARBOR_HA_STATE_DIR")
    return Path(configured) if configured else Path(project_dir or os.getcwd()) / ".harbor-ha"


def terraform_state_dir(project_dir: str | os.PathLike | None, target: str) -> Path:
    """The Terraform state files of ``target``'s stacks: always in the project (the stacks name them relative
    to where terraform runs, whatever ``$HARBOR_HA_STATE_DIR`` says)."""
    return Path(project_dir or os.getcwd()) / TERRAFORM_STATE / target


def local_endpoint(project_dir: str | os.PathLike | None = None) -> str:
    """URL of the running local emulator: ``$HARBOR_HA_LOCAL_ENDPOINT``, else the one recorded when
    it was started (``harbor-ha local start`` or any ``up``)."""
    if os.environ.get(LOCAL_ENDPOINT_ENV):
        return os.environ[LOCAL_ENDPOINT_ENV]
    record = state_dir(project_dir) / "local" / "server.json"
    try:
        return json.loads(record.read_text())["endpoint"]
    except (OSError, ValueError, KeyError):
        raise LocalTargetNotRunning(
            "target 'local' needs the local AWS emulator, and none is running: start it with "
            "'pipenv run harbor-ha local start' (or deploy with 'pipenv run harbor-ha up STACK', which "
            "starts it), or set target to 'aws'") from None


class LocalTargetNotRunning(RuntimeError):
    """The local target was chosen but no emulator is known."""
