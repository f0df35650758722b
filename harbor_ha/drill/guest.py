"""A small QEMU guest with Debian's kernel, for what this machine's kernel cannot do: LVS (IPVS).

The guest is built once and cached (``<state dir>/drill/guest/``): Debian's ``linux-image-*-amd64`` package
(``apt-get download``, unpacked with ``dpkg-deb -x``), the module trees the drill needs with a
``modules.dep`` from ``busybox depmod``, and an initramfs of busybox plus the modules that reach the host's
files. The guest's init mounts this machine's ``/`` read-only over 9p under a tmpfs overlay (so the guest
runs the host's own keepalived, ipvsadm, nft, ip, curl and python3), a read-write 9p share for the run's
program and results, runs ``run.sh`` from the share, and powers off.

QEMU runs with software emulation (TCG): ``/dev/kvm`` on this machine kind is not usable. One boot with a
scenario is 20-60 s; ``run`` kills QEMU when its time is up, whatever happens.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harbor_ha.drill.netns import DrillSetupError
from harbor_ha.drill.pair import NICENESS

KERNEL_META_PACKAGE = "linux-image-amd64"
MODULE_TREES = ("kernel/net", "kernel/fs", "kernel/lib", "kernel/crypto", "kernel/arch", "kernel/drivers/virtio",
                "kernel/drivers/net")
# What the initramfs loads to reach the host's files (with their dependencies from modules.dep).
BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
HOST_ROOT_TAG, SHARE_TAG = "hostroot", "drill"
SHARE_MOUNT = "/drill"
QEMU = "qemu-system-x86_64"

INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for module in $(cat /boot-modules); do insmod "/modules/$module" || echo "init: insmod $module failed"; done
mkdir -p /host /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 {host_tag} /host
mount -t tmpfs -o size=64m tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot
mkdir -p /newroot{share} /newroot/lib/modules
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 {share_tag} /newroot{share}
mount --bind /newroot{modules} /newroot/lib/modules
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mount -t tmpfs tmpfs /newroot/tmp
mount -t tmpfs tmpfs /newroot/run
chroot /newroot /bin/sh {share}/run.sh > /newroot{share}/console.log 2>&1
echo "init: run.sh exited with $?"
sync
poweroff -f
"""


@dataclass(frozen=True)
class Guest:
    """A built guest: kernel, initramfs and the module tree the guest mounts on ``/lib/modules``."""

    kernel: Path
    initrd: Path
    modules: Path
    """The directory holding ``<version>/`` (modules.dep and the trees)."""


def require_qemu() -> str:
    for name in (QEMU, "busybox", "apt-get", "dpkg-deb"):
        if not shutil.which(name):
            raise DrillSetupError(f"{name} is missing: the LVS drill needs qemu-system-x86 and busybox-static "
                                  "(scripts/setup installs them)")
    return shutil.which(QEMU)  # type: ignore[return-value]


def cache_dir() -> Path:
    from harbor_ha.target import state_dir

    return state_dir() / "drill" / "guest"


def build(directory: Path | None = None) -> Guest:
    """The cached guest, built first if needed (download of about 70 MB and a few seconds)."""
    require_qemu()
    directory = directory or cache_dir()
    directory.parent.mkdir(parents=True, exist_ok=True)
    # One builder at a time (two drills may start together); the others wait and find it ready.
    with open(directory.parent / f"{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_unlocked(directory)


def _build_unlocked(directory: Path) -> Guest:
    guest = Guest(kernel=directory / "vmlinuz", initrd=directory / "initrd.cpio", modules=directory / "modules")
    if (directory / "ready").exists():
        return guest
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="harbor-ha-guest-") as work:
        work_dir = Path(work)
        package = _kernel_package()
        _run(["apt-get", "download", package], cwd=work_dir)
        deb = next(work_dir.glob(f"{package}_*.deb"))
        unpacked = work_dir / "unpacked"
        _run(["dpkg-deb", "-x", str(deb), str(unpacked)])
        version = package.removeprefix("linux-image-")
        shutil.copyfile(next((unpacked / "boot").glob(f"vmlinuz-{version}")), guest.kernel)
        source = unpacked / "lib" / "modules" / version
        target = guest.modules / version
        for tree in MODULE_TREES:
            if (source / tree).exists():
                shutil.copytree(source / tree, target / tree)
        for name in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
            shutil.copyfile(source / name, target / name)
        # busybox depmod -b BASE expects BASE/lib/modules/VERSION: give it that shape with a symlink.
        base = work_dir / "depmod"
        (base / "lib").mkdir(parents=True)
        (base / "lib" / "modules").symlink_to(guest.modules)
        _run(["busybox", "depmod", "-b", str(base), version])
        _initramfs(work_dir / "initramfs", target, guest)
    (directory / "ready").write_text("built\n")
    return guest


def _kernel_package() -> str:
    """The kernel image package Debian's meta package points at now (``linux-image-6.1.0-N-amd64``)."""
    out = _run(["apt-cache", "depends", KERNEL_META_PACKAGE])
    for line in out.splitlines():
        name = line.strip().removeprefix("Depends: ")
        if name.startswith("linux-image-") and name.endswith("-amd64") and name != KERNEL_META_PACKAGE:
            return name
    raise DrillSetupError(f"apt knows no kernel package behind {KERNEL_META_PACKAGE} (run apt-get update)")


def _boot_modules(modules: Path) -> list[str]:
    """BOOT_MODULES and what they need, dependencies first, as paths relative to ``modules``."""
    dep = {}
    for line in (modules / "modules.dep").read_text().splitlines():
        path, _, needs = line.partition(":")
        dep[Path(path).name.split(".ko")[0].replace("-", "_")] = (path, needs.split())
    by_path = {path: name for name, (path, _) in dep.items()}
    ordered: list[str] = []

    def add(name: str) -> None:
        path, needs = dep[name]
        for need in reversed(needs):  # modules.dep lists the closest dependency first
            add(by_path[need])
        if path not in ordered:
            ordered.append(path)

    for name in BOOT_MODULES:
        add(name)
    return ordered


def _initramfs(root: Path, modules: Path, guest: Guest) -> None:
    for sub in ("bin", "proc", "sys", "dev", "modules"):
        (root / sub).mkdir(parents=True)
    shutil.copyfile(shutil.which("busybox"), root / "bin" / "busybox")
    (root / "bin" / "busybox").chmod(0o755)
    listed = []
    for relative in _boot_modules(modules):
        name = Path(relative).name
        shutil.copyfile(modules / relative, root / "modules" / name)
        listed.append(name)
    (root / "boot-modules").write_text("\n".join(listed) + "\n")
    init = root / "init"
    init.write_text(INIT.format(host_tag=HOST_ROOT_TAG, share_tag=SHARE_TAG, share=SHARE_MOUNT,
                                modules=str(guest.modules)))
    init.chmod(0o755)
    names = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True, check=True).stdout
    with guest.initrd.open("wb") as out:
        subprocess.run(["busybox", "cpio", "-o", "-H", "newc"], cwd=root, input=names.encode(), stdout=out,
                       stderr=subprocess.DEVNULL, check=True)


def _run(argv: list[str], cwd: Path | None = None) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise DrillSetupError(f"{' '.join(argv)} failed: {result.stderr.strip()[-400:]}")
    return result.stdout


def run(guest: Guest, share: Path, timeout: float) -> subprocess.CompletedProcess:
    """Boot the guest with ``share`` (holding ``run.sh``) at /drill; QEMU is killed after ``timeout`` s."""
    qemu = require_qemu()
    argv = [qemu, "-accel", "tcg,tb-size=256", "-smp", "2", "-m", "384", "-nographic", "-no-reboot", "-nic", "none",
            "-kernel", str(guest.kernel), "-initrd", str(guest.initrd),
            "-append", "console=ttyS0 quiet panic=-1",
            "-fsdev", f"local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
            "-device", f"virtio-9p-pci,fsdev=hostroot,mount_tag={HOST_ROOT_TAG}",
            "-fsdev", f"local,id=drill,path={share},security_model=none,multidevs=remap",
            "-device", f"virtio-9p-pci,fsdev=drill,mount_tag={SHARE_TAG}"]
    # Ahead of other work on the machine, like the drill's nodes (harbor_ha.drill.pair.NICENESS).
    argv = ["nice", "-n", str(NICENESS), *argv]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        return subprocess.CompletedProcess(argv, -9, out.decode(errors="replace") + "\n(killed: time is up)", "")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(argv, process.returncode, out.decode(errors="replace"), "")

