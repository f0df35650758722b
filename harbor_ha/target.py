"""Where a deployment goes and where harbor-ha keeps its local files: the state directory and the Terraform
state (the local emulator's URL: ``harbor_ha.local.emulator.endpoint``). No cdktf import here, so the CLI can
answer quickly."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Credentials the emulator accepts; they open nothing anywhere else.
LOCAL_ACCESS_KEY = "harbor-ha-local"


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
