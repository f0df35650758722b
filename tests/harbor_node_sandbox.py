"""A Harbor node's first boot up to Harbor's start, run for real on this machine: the files its user-data
writes, its boot steps (bash), and Harbor's own installer code rendering every component's configuration.

The node's filesystem is an overlay of this machine's root with the node's files written into the upper layer
(as cloud-init's write_files does). Each step runs chrooted into that overlay in a private mount namespace, so
the boot scripts run unmodified at their real paths (/etc/harbor-ha, /opt/harbor, /data) and nothing outside
the overlay changes; the namespace goes with the process. Needs root (mount namespaces, overlayfs).

Stand-ins, each named for what it replaces:
- ``/opt/harbor/prepare`` is ``stand_ins/harbor-installer-prepare``: the installer's ./prepare, which runs
  Harbor's make/photon/prepare in the goharbor/prepare container; the stand-in makes the container's mounts and
  runs that same code (``../shared/reference/harbor/prepare``). The rest of the installer (docker images,
  docker compose) is not there: nothing starts Harbor.
- ``/usr/bin/systemctl`` is ``stand_ins/systemctl``, which records its calls.
- Amazon Linux's CA bundle (``harbor_config.REDIS_ROOT_CA``) is this machine's CA bundle.
- Instance metadata comes from ``conftest.FakeImds`` (``HARBOR_HA_IMDS_ENDPOINT``); AWS from a moto server.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import yaml

from harbor_ha.cloud_init import UNPACK_BUNDLE, written_files
from harbor_ha.harbor_config import REDIS_ROOT_CA
from conftest import PROJECT, REFERENCE, require_tool

STAND_INS = Path(__file__).resolve().parent / "stand_ins"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Boot steps that need what the sandbox does not have: Harbor's download and a block device.
NOT_RUN_STEPS = ("install-harbor.sh", "data-volume.sh")
CONFIGURE_STEP = "configure-harbor.sh"
_REFERENCE_RE = re.compile(r"\$\{([^{}]+)\}")


@dataclass(frozen=True)
class NodeFile:
    path: str
    content: bytes
    mode: int


def node_files(user_data: str) -> list[NodeFile]:
    """The files a cloud-config's ``write_files`` writes (its archive of the node's programs too, still packed:
    the node's first command unpacks it), decoded."""
    return [NodeFile(path, data, mode) for path, (data, mode) in written_files(user_data, unpack=False).items()]


def boot_steps(user_data: str) -> list[list[str]]:
    """The runcmd entries up to and including the boot step that runs Harbor's prepare: the archive's unpacking,
    then boot steps; the steps the sandbox cannot run (``NOT_RUN_STEPS``) left out."""
    steps = []
    for command in yaml.safe_load(user_data)["runcmd"]:
        if tuple(command) == UNPACK_BUNDLE and not steps:
            steps.append(command)
            continue
        step = command[1] if isinstance(command, list) and command[0].endswith("/run-step.sh") else None
        if step in NOT_RUN_STEPS:
            continue
        assert step, f"a command before {CONFIGURE_STEP} that is not a boot step: {command}"
        steps.append(command)
        if step == CONFIGURE_STEP:
            return steps
    raise AssertionError(f"no {CONFIGURE_STEP} step in the node's runcmd")


def resolve_references(text: str, resolve: Callable[[str], str]) -> str:
    """``text`` with every Terraform reference ``${expression}`` replaced by ``resolve(expression)``."""
    return _REFERENCE_RE.sub(lambda match: resolve(match.group(1)), text)


class HarborNodeSandbox:
    """One node's filesystem under ``root``; ``run`` executes a command on it."""

    def __init__(self, root: Path) -> None:
        require_tool("unshare")
        require_tool("htpasswd")  # Harbor's prepare writes the registry's password file with it
        if os.geteuid() != 0:
            raise RuntimeError("the Harbor node sandbox needs root (mount namespaces, overlayfs)")
        self.root = root
        self.upper = root / "upper"
        for directory in (self.upper, root / "work", root / "merged"):
            directory.mkdir(parents=True)
        self.write("/opt/harbor/prepare", (STAND_INS / "harbor-installer-prepare").read_bytes(), 0o755)
        self.write("/usr/bin/systemctl", (STAND_INS / "systemctl").read_bytes(), 0o755)
        self.write(REDIS_ROOT_CA, HOST_CA_BUNDLE.read_bytes(), 0o644)

    def write(self, path: str, content: bytes, mode: int) -> None:
        target = self.upper / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)

    def path(self, path: str) -> Path:
        """Where a file the node wrote lies on this machine."""
        return self.upper / path.lstrip("/")

    def read(self, path: str) -> str:
        return self.path(path).read_text()

    def run(self, argv: list[str], environment: Mapping[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
        """``argv`` on the node as root, with ``environment`` only (and a PATH that finds the project's aws CLI
        and Python, as a node finds its own)."""
        merged = self.root / "merged"
        binds = sorted({str(PROJECT), str(REFERENCE), sys.base_prefix, sys.prefix})
        setup = "\n".join([
            "set -euo pipefail",
            "mount --make-rprivate /",
            f"mount -t overlay overlay -o lowerdir=/,upperdir={self.upper},workdir={self.root / 'work'} {merged}",
            f"mount --rbind /dev {merged}/dev",
            f"mount --rbind /proc {merged}/proc",
            *(f"mkdir -p {merged}{path} && mount --bind {path} {merged}{path}" for path in binds),
            f'exec chroot {merged} /usr/bin/env -i "$@"',
        ])
        path = f"{Path(sys.executable).parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        env_args = [f"{key}={value}" for key, value in {"PATH": path, "HOME": "/root", **environment}.items()]
        return subprocess.run(["unshare", "--mount", "--fork", "bash", "-c", setup, "sandbox", *env_args, *argv],
                              capture_output=True, text=True, timeout=timeout)

    def systemctl_calls(self) -> list[str]:
        log = self.path("/var/log/systemctl-calls")
        return log.read_text().splitlines() if log.exists() else []


def env_file(text: str) -> dict[str, str]:
    """``KEY=value`` lines of an env file Harbor's prepare renders (docker compose ``env_file``), verbatim."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values
