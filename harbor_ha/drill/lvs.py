"""The LVS half of the active-active drill, from this machine's side: prepares the guest's share (director 0's
user-data as the stack renders it: vrrp.conf, lb-pool and its settings, lvs-nat-setup, the two keepalived
command lines of harbor-vrrp and harbor-lvs; the pool documents for two and then three Harbor servers; a
certificate for the Harbor stand-ins), boots the guest (``harbor_ha.drill.guest``) to run
``harbor_ha.drill.lvs_in_guest``, and turns what it saw into runs (``harbor_ha.drill.scenarios.Run``).
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import harbor_ha
from harbor_ha.drill import guest as qemu
from harbor_ha.drill.pair import INTERFACE, NODE_ADDRESSES
from harbor_ha.drill.scenarios import Run
from harbor_ha.drill.standins import self_signed_certificate
from harbor_ha.keepalived import (
    LVS_CONFIG_PATH, VRRP_CONFIG_PATH, VrrpPair, director_cloud_config, pool_document, pool_parameter_name,
)

GUEST_TIMEOUT = 600.0
REAL_SERVER_BASE = 20  # the Harbor servers in the guest: 192.0.2.20, .21, ...
# Modules the director needs; nft and IPVS load further ones on demand through the wrapper. crc32c_generic
# first: libcrc32c (for conntrack and nf_tables) asks the crypto API for it by an alias busybox cannot resolve.
MODULES = ("crc32c_generic", "ip_vs", "ip_vs_wlc", "nf_conntrack", "nf_tables", "nft_nat", "nft_chain_nat", "veth", "bridge")
CLIENTS = [f"192.0.2.{100 + n}" for n in range(16)]
# The one substitution besides addresses: the guest's CPU is emulated, about ten times slower than a VM's, and
# one check-harbor-health run (sh, curl's TLS, grep) there takes 1-4 s of the stack's 5 s misc_timeout when
# the four checks of two servers run at once. A healthy server must not count as failed for being emulated;
# an unhealthy body fails its check at once, so the time out of the pool does not depend on this.
STACK_MISC_TIMEOUT, GUEST_MISC_TIMEOUT = "misc_timeout 5", "misc_timeout 20"
UNITS = ("harbor-vrrp.service", "harbor-lvs.service")


def _in_guest(arg: str, paths: dict[str, str]) -> str:
    option, _, value = arg.partition("=")
    return f"{option}={paths[value]}" if value in paths else arg


def _director_files(pair: VrrpPair, share: Path) -> dict:
    """Director 0's user-data, written into ``share`` as the guest runs it: its programs (lb-pool among them),
    vrrp.conf, lb-pool's settings and the keepalived command line of each of its two units. Paths under /etc
    become paths in the share; everything else is the stack's."""
    guest = {VRRP_CONFIG_PATH: f"{qemu.SHARE_MOUNT}/vrrp.conf", LVS_CONFIG_PATH: f"{qemu.SHARE_MOUNT}/lvs.conf"}
    found: dict = {}
    for item in director_cloud_config(pair, 0, pool_parameter_name(pair.name)).files:
        name = Path(item.path).name
        if item.path.startswith(pair.libexec):
            target = share / "libexec" / name
            target.write_text(item.content)
            target.chmod(0o755)
        elif item.path == VRRP_CONFIG_PATH:
            (share / "vrrp.conf").write_text(item.content)
        elif name == "lb-pool.json":
            found["lb_pool"] = {**json.loads(item.content), "config": guest[LVS_CONFIG_PATH]}
        elif name in UNITS:
            start = next(line for line in item.content.splitlines() if line.startswith("ExecStart="))
            argv = shlex.split(start.removeprefix("ExecStart="))
            found[name] = [_in_guest(arg, guest) for arg in argv]
    assert {"lb_pool", *UNITS} <= set(found), sorted(found)
    return found


def lvs_drill(settings, runs: int, keep_files: bool = False) -> tuple[list[Run], Path | None]:
    """Boot the guest once; ``runs`` unhealthy/healthy cycles plus the checks of spread, SNAT, persistence and
    the pool change. Returns the runs, and the share directory if ``keep_files``."""
    guest = qemu.build()
    share = Path(tempfile.mkdtemp(prefix="harbor-ha-lvs-"))
    share.chmod(0o755)
    try:
        (share / "libexec").mkdir(mode=0o755)
        pair = VrrpPair(name=settings.name, addresses=NODE_ADDRESSES, interface=INTERFACE,
                        libexec=f"{qemu.SHARE_MOUNT}/libexec")
        servers = [f"192.0.2.{REAL_SERVER_BASE + n}" for n in range(settings.harbor_count)]
        added = f"192.0.2.{REAL_SERVER_BASE + len(servers)}"
        director = _director_files(pair, share)
        cert, key = self_signed_certificate(share, [*servers, added])
        guest_settings = {
            "share": qemu.SHARE_MOUNT, "director": NODE_ADDRESSES[0], "real_servers": servers, "added_server": added,
            "clients": CLIENTS, "runs": runs, "lb_pool_program": f"{pair.libexec}/lb-pool",
            "lb_pool": director["lb_pool"], "vrrp_argv": director["harbor-vrrp.service"],
            "lvs_argv": director["harbor-lvs.service"], "nat_setup": f"{pair.libexec}/lvs-nat-setup",
            "pool": json.dumps(pool_document(servers)), "grown_pool": json.dumps(pool_document([*servers, added])),
            "misc_timeout": [STACK_MISC_TIMEOUT, GUEST_MISC_TIMEOUT],
            "certificate": f"{qemu.SHARE_MOUNT}/{cert.name}", "key": f"{qemu.SHARE_MOUNT}/{key.name}"}
        (share / "settings.json").write_text(json.dumps(guest_settings, indent=2))
        # This machine has no kmod, so the guest (running its programs) has no modprobe: busybox's stands in,
        # for the kernel's on-demand loading and for lvs-nat-setup's own "modprobe ip_vs".
        (share / "bin").mkdir(mode=0o755)
        (share / "bin" / "modprobe").write_text('#!/bin/sh\nexec /bin/busybox modprobe "$@"\n')
        (share / "bin" / "modprobe").chmod(0o755)
        root = Path(harbor_ha.__file__).resolve().parent.parent
        (share / "run.sh").write_text("\n".join([
            # nft and IPVS load modules on demand through the kernel's modprobe helper: busybox's here.
            f"echo {qemu.SHARE_MOUNT}/bin/modprobe > /proc/sys/kernel/modprobe",
            f"export PATH={qemu.SHARE_MOUNT}/bin:$PATH",
            f"busybox modprobe -a {' '.join(MODULES)}",
            f"cd {qemu.SHARE_MOUNT} && PYTHONPATH={root} {sys.executable} -m harbor_ha.drill.lvs_in_guest "
            f"{qemu.SHARE_MOUNT}/settings.json", ""]))
        booted = qemu.run(guest, share, GUEST_TIMEOUT)
        return _runs(share, booted, runs), (share if keep_files else None)
    finally:
        if not keep_files:
            shutil.rmtree(share, ignore_errors=True)


def _runs(share: Path, booted, runs: int) -> list[Run]:
    try:
        results = json.loads((share / "results.json").read_text())
    except (OSError, ValueError):
        console = (share / "console.log").read_text(errors="replace")[-1500:] if (share / "console.log").exists() else ""
        run = Run("lvs-pool", 0, problems=[f"the guest reported nothing (exit {booted.returncode}): "
                                           f"{console or booted.stdout[-1500:]}"])
        return [run]
    health = []
    for index, cycle in enumerate(results["cycles"]):
        run = Run("lvs-health", index, out_of_pool=cycle["out_of_pool"], back_in_pool=cycle["back_in_pool"])
        if cycle["out_of_pool"] is None:
            run.problems.append("the unhealthy server stayed in the pool")
        if cycle["back_in_pool"] is None:
            run.problems.append("the server did not return to the pool once healthy")
        health.append(run)
    if len(health) < runs:
        health.append(Run("lvs-health", len(health), problems=[f"only {len(health)} of {runs} cycles ran"]))
    checks = Run("lvs-pool", 0, problems=[f"{name}: {c['detail']}" if c["detail"] else name
                                          for name, c in results["checks"].items() if not c["ok"]])
    checks.checks = results["checks"]  # type: ignore[attr-defined]
    return [checks, *health]
