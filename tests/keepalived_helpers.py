"""keepalived helpers the tests share: ``keepalived -t`` on rendered and installed configurations, and two
network namespaces joined by a veth pair for a real VRRP pair."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harbor_ha.keepalived import CONFIG_PATH, LIBEXEC, TEMPLATES, VRRP_CONFIG_PATH

from conftest import IN_CI, require_tool

def host_interface() -> str:
    """An interface of this machine other than loopback: ``keepalived -t`` checks that it exists."""
    names = sorted(p.name for p in Path("/sys/class/net").iterdir() if p.name != "lo")
    if not names:
        pytest.skip("no network interface besides loopback")
    return names[0]


def install_programs(directory: Path) -> None:
    """What user-data installs, into ``directory``: keepalived refuses scripts that are missing or that
    others can modify."""
    directory.chmod(0o755)
    for name in ("check-harbor-health", "vip-notify"):
        target = directory / name
        shutil.copyfile(TEMPLATES / f"{name}.sh", target)
        target.chmod(0o755)


def keepalived_check(text: str, directory: Path) -> subprocess.CompletedProcess:
    """Run ``keepalived -t`` on ``text``, with the programs it names installed in ``directory``."""
    keepalived = require_tool("keepalived")
    config = directory / "keepalived.conf"
    config.write_text(text)
    return subprocess.run([keepalived, "-t", "-f", str(config)], capture_output=True, text=True, timeout=60)


def check_installed_config(files: dict[str, str], workdir: Path) -> subprocess.CompletedProcess:
    """``keepalived -t`` on the VRRP configuration that a node's user-data writes (``files``: path -> text):
    vrrp.conf on a director, keepalived.conf on an active-standby node; with the programs it writes installed
    in ``workdir`` and the instance's interface (ens5) mapped onto this machine."""
    workdir.mkdir(mode=0o755, exist_ok=True)
    for name in ("check-harbor-health", "vip-notify"):
        (workdir / name).write_text(files[f"{LIBEXEC}/{name}"])
        (workdir / name).chmod(0o755)
    config = files.get(VRRP_CONFIG_PATH, files.get(CONFIG_PATH, "")).replace(LIBEXEC, str(workdir)).replace(
        "interface ens5", f"interface {host_interface()}")
    return keepalived_check(config, workdir)


# Per process: two pytest workers may each run a pair at once.
NAMESPACES = (f"hh-vrrp-{os.getpid()}-0", f"hh-vrrp-{os.getpid()}-1")
VETH_ADDRESSES = ("192.0.2.10", "192.0.2.11")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def two_namespaces():
    """Two network namespaces joined by a veth pair, one keepalived node in each."""
    require_tool("ip")
    if os.geteuid() != 0:
        message = "network namespaces need root"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    for name in NAMESPACES:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        ip("netns", "add", name)
    try:
        ip("link", "add", "hhv0", "netns", NAMESPACES[0], "type", "veth", "peer", "name", "hhv1", "netns",
           NAMESPACES[1])
        for index, name in enumerate(NAMESPACES):
            ip("-n", name, "addr", "add", f"{VETH_ADDRESSES[index]}/24", "dev", f"hhv{index}")
            ip("-n", name, "link", "set", f"hhv{index}", "up")
            ip("-n", name, "link", "set", "lo", "up")
        yield
    finally:
        for name in NAMESPACES:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)
