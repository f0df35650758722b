"""What the end-to-end modules share: a project with an emulator of its own, the harbor-ha command run as an
operator runs it (a process of its own), and looks at the target and at the processes left."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest

from harbor_ha.local import emulator
from harbor_ha.target import LOCAL_ACCESS_KEY
from conftest import PROJECT, require_tool


@contextmanager
def emulated_project(root: Path):
    """``(root, endpoint)``: a project in ``root`` (cdktf.json, state) with a fresh emulator, stopped after."""
    require_tool("terraform")
    shutil.copy(PROJECT / "cdktf.json", root / "cdktf.json")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HARBOR_HA_STATE_DIR", str(root / ".harbor-ha"))
        with emulator.running(root) as running:
            yield root, running.endpoint


def use_project(monkeypatch, project: tuple[Path, str]) -> None:
    """harbor-ha in this test's process works on ``project`` (an ``emulated_project``): its state and its
    emulator, instead of the fixed URL conftest gives every test."""
    root, endpoint = project
    monkeypatch.setenv("HARBOR_HA_STATE_DIR", str(root / ".harbor-ha"))
    monkeypatch.setenv(emulator.ENDPOINT_ENV, endpoint)


def client(endpoint: str, service: str, region: str = "us-east-1"):
    return boto3.client(service, endpoint_url=endpoint, region_name=region,
                        aws_access_key_id=LOCAL_ACCESS_KEY, aws_secret_access_key=LOCAL_ACCESS_KEY)


def command_env(root: Path, endpoint: str, **settings: str) -> dict[str, str]:
    env = {**os.environ, "HARBOR_HA_STATE_DIR": str(root / ".harbor-ha"), emulator.ENDPOINT_ENV: endpoint,
           "PYTHONPATH": str(PROJECT)}
    env.update({f"HARBOR_HA_{key.upper()}": value for key, value in settings.items()})
    return env


def start(root: Path, endpoint: str, *args: str, **settings: str) -> subprocess.Popen:
    """``harbor-ha ARGS`` in ``root`` as a process (and process group) of its own, output to files in root."""
    name = "-".join(args)
    return subprocess.Popen([str(Path(sys.executable).parent / "harbor-ha"), *args], cwd=root,
                            env=command_env(root, endpoint, **settings), start_new_session=True,
                            stdout=open(root / f"{name}.out", "w"), stderr=open(root / f"{name}.err", "w"))


def run(root: Path, endpoint: str, *args: str, timeout: float = 900, **settings: str) -> tuple[int, str, str]:
    """``harbor-ha ARGS`` to its end: (exit code, stdout, stderr)."""
    process = start(root, endpoint, *args, **settings)
    process.wait(timeout=timeout)
    return process.returncode, *outputs(root, *args)


def outputs(root: Path, *args: str) -> tuple[str, str]:
    name = "-".join(args)
    return (root / f"{name}.out").read_text(), (root / f"{name}.err").read_text()


def wait_for_line(path: Path, *texts: str, timeout: float = 600) -> None:
    """Until ``path`` holds a line with all of ``texts``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and any(all(t in line for t in texts) for line in path.read_text().splitlines()):
            return
        time.sleep(0.5)
    raise AssertionError(f"{path} never showed {texts!r}:\n{path.read_text() if path.exists() else ''}")


def processes_in(root: Path) -> list[str]:
    """Command lines of the processes working in ``root`` (terraform and its providers run there)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")).is_relative_to(root):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
        except OSError:
            continue
    return found
