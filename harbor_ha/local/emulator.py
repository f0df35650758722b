"""Start, reuse, stop and reset the local AWS emulator (a moto server on loopback).

One emulator per state directory: its pid and URL are recorded in ``<state_dir>/local/server.json``,
its log goes to ``<state_dir>/local/server.log``. ``endpoint`` is where every part of harbor-ha (the stacks'
provider, ``harbor-ha`` and ``cdktf synth``) learns the URL the local target uses. The emulator keeps
everything in memory: stopping it discards what was deployed on it, and the local target's Terraform
state then describes resources that no longer exist (``reset`` forgets both).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from harbor_ha.target import state_dir, terraform_state_dir

# moto's account id: what the local target reports as "the account" before a change.
ACCOUNT_ID = "123456789012"
HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
# An emulator started elsewhere (a test's, a CI job's): when set, harbor-ha uses it and starts none.
ENDPOINT_ENV = "HARBOR_HA_LOCAL_ENDPOINT"


@dataclass(frozen=True)
class Emulator:
    """A running emulator."""

    endpoint: str
    port: int
    pid: int


class EmulatorError(RuntimeError):
    """The emulator could not be started, or the local state no longer matches it."""


class LocalTargetNotRunning(EmulatorError):
    """The local target was chosen, no emulator is running and none was to be started."""


def endpoint(project_dir: str | os.PathLike | None = None, *, start_if_needed: bool = True,
             report: Callable[[str], None] | None = None) -> str:
    """The URL of the emulator the local target uses: ``$HARBOR_HA_LOCAL_ENDPOINT`` if set, else the project's
    own emulator, started (or reused) when ``start_if_needed``, otherwise only if it runs already
    (``LocalTargetNotRunning``). ``report`` hears which emulator it is when it is the project's."""
    if os.environ.get(ENDPOINT_ENV):
        return os.environ[ENDPOINT_ENV]
    if start_if_needed:
        running, started = start(project_dir)
    else:
        running, started = status(project_dir), False
        if running is None:
            raise LocalTargetNotRunning(
                "target 'local' needs the local AWS emulator, and none is running: start it with "
                "'pipenv run harbor-ha local start' (or deploy with 'pipenv run harbor-ha up STACK', which "
                "starts it), or set target to 'aws'")
    if report:
        report(f"local AWS emulator {'started' if started else 'running'} at {running.endpoint} (pid {running.pid})")
    return running.endpoint


def local_dir(project_dir: str | os.PathLike | None = None) -> Path:
    return state_dir(project_dir) / "local"


def local_state_files(project_dir: str | os.PathLike | None = None) -> list[Path]:
    """Terraform state files of the local target that record at least one resource."""
    files = []
    for path in sorted(terraform_state_dir(project_dir, "local").glob("*.tfstate")):
        try:
            if json.loads(path.read_text()).get("resources"):
                files.append(path)
        except (OSError, ValueError):
            files.append(path)
    return files


def status(project_dir: str | os.PathLike | None = None) -> Emulator | None:
    """The recorded emulator if its process is alive and it answers, else None."""
    try:
        emulator = Emulator(**json.loads((local_dir(project_dir) / "server.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if _alive(emulator.pid) and answers(emulator.endpoint):
        return emulator
    return None


def answers(endpoint: str, timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def start(project_dir: str | os.PathLike | None = None, *, port: int | None = None) -> tuple[Emulator, bool]:
    """The running emulator, started if needed: ``(emulator, started_now)``.

    Refuses to start a fresh emulator while local Terraform state records resources: they died with the
    previous emulator, and ``reset`` must forget them first."""
    running = status(project_dir)
    if running:
        return running, False
    stale = local_state_files(project_dir)
    if stale:
        raise EmulatorError(
            "the local AWS emulator is not running (it was stopped or died), and everything deployed on it "
            "went with it, but the local Terraform state still lists resources: "
            + ", ".join(str(p) for p in stale)
            + ". Run 'harbor-ha local reset' to forget them, then deploy again.")
    directory = local_dir(project_dir)
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = open(directory / "server.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "harbor_ha.local.server", "--host", HOST, "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    emulator = Emulator(endpoint=f"http://{HOST}:{port}", port=port, pid=process.pid)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(emulator.endpoint, timeout=2.0):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise EmulatorError(f"the local AWS emulator did not start; its log is {directory / 'server.log'}")
        time.sleep(0.3)
    (directory / "server.json").write_text(json.dumps(asdict(emulator)) + "\n")
    return emulator, True


def stop(project_dir: str | os.PathLike | None = None) -> bool:
    """Stop the recorded emulator; False if none was running."""
    record = local_dir(project_dir) / "server.json"
    try:
        emulator = Emulator(**json.loads(record.read_text()))
    except (OSError, ValueError, TypeError):
        return False
    record.unlink(missing_ok=True)
    if not _alive(emulator.pid):
        return False
    os.kill(emulator.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _alive(emulator.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(emulator.pid):
        os.kill(emulator.pid, signal.SIGKILL)
    return True


def reset(project_dir: str | os.PathLike | None = None) -> list[Path]:
    """Empty the emulator (if running) and delete the local target's Terraform state, which no longer
    matches it. Returns the deleted state files."""
    running = status(project_dir)
    if running:
        request = urllib.request.Request(running.endpoint + "/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30):
            pass
    removed = []
    for path in sorted(terraform_state_dir(project_dir, "local").glob("*.tfstate*")):
        path.unlink()
        removed.append(path)
    return removed


@contextmanager
def running(project_dir: str | os.PathLike | None = None):
    """``with running(dir) as emulator:`` an emulator of its own for the block, stopped after it."""
    emulator, started = start(project_dir)
    try:
        yield emulator
    finally:
        if started:
            stop(project_dir)


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (started by this process and not yet reaped) is dead for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
