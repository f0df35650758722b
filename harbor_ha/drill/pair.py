"""A stack's VRRP pair, run for real on this machine: two network namespaces joined by a bridge (the
subnet), the real keepalived in each with the configuration the stack's user-data installs (only the
addresses are the drill's, and the programs live in the drill's directory), the real vip-notify (its EC2
calls signed by curl) against the local emulator, an instance-metadata stand-in per node, and for active-standby a Harbor
health stand-in per node. A MASTER transition re-associates the Elastic IP in the emulator, as on EC2.

The directors of active-active run keepalived's VRRP process only (``--vrrp``): this machine's kernel has no
IPVS, so their LVS half runs in the QEMU guest instead (``harbor_ha.drill.guest``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harbor_ha.drill import netns
from harbor_ha.drill.netns import DrillSetupError, Namespace, Relay, listening_socket
from harbor_ha.drill.standins import (
    HarborHealthStandIn, HealthSwitch, ImdsStandIn, Served, self_signed_certificate, serve_https,
)
from harbor_ha.keepalived import (
    CONFIG_PATH, LIBEXEC, VRRP_CONFIG_PATH, VrrpPair, director_cloud_config, pool_parameter_name,
    standby_cloud_config,
)
from harbor_ha.rules import VIP_TAG_KEY

DRILL_STACKS = ("active-active", "active-standby")
# TEST-NET-1 (RFC 5737): the drill's subnet exists only inside its namespaces.
NODE_ADDRESSES = ("192.0.2.10", "192.0.2.11")
SUBNET_BITS = 24
INTERFACE = "ens5"  # the interface name the stacks render; the drill names its veth ends alike
IMDS_ADDRESS = "169.254.169.254"
# Where a node reaches the EC2 API: a relay inside its namespace to the emulator on this machine's loopback.
EC2_ENDPOINT = ("127.0.0.1", 4566)
STATE_RE = re.compile(r"\) Entering (MASTER|BACKUP|FAULT) STATE")
# The nodes are VMs of their own, the emulator stands for AWS: on a machine shared with other work the drill
# runs them (and what they start: vip-notify and its curl) ahead of that work, so that the figures measure
# the failover rather than the machine's other load. The load average is printed with the figures.
NICENESS = -10
PID_FILE_OPTIONS = ("--pid=", "--vrrp_pid=", "--checkers_pid=")


def require_tools() -> dict[str, str]:
    """The programs the drill runs, by name; a missing one (or not being root) is one clear error."""
    if os.geteuid() != 0:
        raise DrillSetupError("the drill builds network namespaces and needs root")
    found = {name: shutil.which(name) for name in ("ip", "keepalived", "curl", "python3")}
    missing = sorted(name for name, path in found.items() if not path)
    if missing:
        raise DrillSetupError(f"missing programs for the drill: {', '.join(missing)} (scripts/setup installs them)")
    return found  # type: ignore[return-value]


@dataclass
class Node:
    """One VRRP node: its namespace, its EC2 instance in the emulator, its keepalived and what it reported."""

    index: int
    namespace: Namespace
    instance_id: str
    config: Path
    argv: list[str]
    env: dict[str, str]
    log: Path
    health: HealthSwitch
    process: subprocess.Popen | None = None
    events: list[tuple[float, str]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def name(self) -> str:
        return f"node {self.index}"

    def start(self) -> None:
        # A stopped unit's RuntimeDirectory goes with it; a pid file left by a killed keepalived would name a
        # pid that another process may have taken since, and keepalived then refuses to start ("daemon is
        # already running").
        for option in self.argv:
            if option.startswith(PID_FILE_OPTIONS):
                Path(option.split("=", 1)[1]).unlink(missing_ok=True)
        log = self.log.open("a")
        argv = ["nice", "-n", str(NICENESS), *self.namespace.command(*self.argv)]
        self.process = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)
        threading.Thread(target=self._read, args=(self.process, log), daemon=True).start()

    def _read(self, process: subprocess.Popen, log) -> None:
        for line in process.stdout:
            log.write(line)
            log.flush()
            match = STATE_RE.search(line)
            if match:
                with self.changed:
                    self.events.append((time.monotonic(), match.group(1)))
                    self.changed.notify_all()
        log.close()

    @property
    def state(self) -> str:
        """The last state keepalived entered; ``STOPPED`` when it does not run."""
        if not self.running:
            return "STOPPED"
        return self.events[-1][1] if self.events else "INIT"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_state(self, state: str, since: float, timeout: float) -> float | None:
        """The time keepalived entered ``state`` after ``since``, waiting up to ``timeout`` s; None if not."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for at, seen in self.events:
                    if at >= since and seen == state:
                        return at
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.changed.wait(remaining)

    def transitions(self, since: float) -> list[str]:
        return [state for at, state in self.events if at >= since]

    def signal(self, sig: int) -> None:
        """``sig`` to keepalived (the parent; it stops its children) or, for SIGKILL, to all of its processes
        at once, as when the machine dies: no process gets to send a last advert."""
        if not self.running:
            return
        if sig == signal.SIGKILL:
            self.kill_all()
        else:
            self.process.send_signal(sig)

    def stop(self, timeout: float = 10) -> None:
        if self.process is None:
            return
        if self.running:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill_all()
        self.process.wait()

    def kill_all(self, timeout: float = 10) -> None:
        """SIGKILL to keepalived's group and to every process started on the node: keepalived runs each notify
        script in a process group of its own, so a script (and the curl it runs) outlives a killed group. They
        are found by the node's own run directory in their environment, until none is left."""
        marker = f"HARBOR_HA_RUN_DIR={self.env['HARBOR_HA_RUN_DIR']}".encode()
        groups = {self.process.pid}
        deadline = time.monotonic() + timeout
        while groups and time.monotonic() < deadline:
            for group in groups:
                try:
                    os.killpg(group, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            groups = set()
            for pid in processes_with_environment(marker):
                try:
                    groups.add(os.getpgid(pid))
                except ProcessLookupError:
                    pass
            time.sleep(0.05 if groups else 0)

    def holds_master_marker(self) -> bool:
        """The MASTER's own sign: the host-scoped marker address keepalived puts on ``lo``."""
        return "169.254.100.1/32" in self.namespace.ip("-o", "addr", "show", "dev", "lo")


def processes_naming(text: str) -> list[int]:
    """The live processes other than this one whose command line holds ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def processes_with_environment(marker: bytes) -> list[int]:
    """The live processes whose environment holds ``marker`` (``NAME=value``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


class PairDrill:
    """``with PairDrill(stack, settings) as drill:`` the stack's VRRP pair running, node 0 MASTER with the
    Elastic IP; everything (processes, namespaces, emulator, stand-ins, files) is removed on exit."""

    def __init__(self, stack: str, settings, workdir: Path | None = None, keep_files: bool = False) -> None:
        if stack not in DRILL_STACKS:
            raise ValueError(f"stack = {stack!r}: allowed is {' | '.join(DRILL_STACKS)}")
        self.stack, self.settings = stack, settings
        self.region = settings.region
        self.keep_files = keep_files
        self._workdir_given = workdir
        self.nodes: list[Node] = []
        self._closers: list = []
        self.pair = None

    # ---- set-up -------------------------------------------------------------------------------------------
    def __enter__(self) -> PairDrill:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        tools = require_tools()
        netns.remove_stale()
        self.workdir = self._workdir_given or Path(tempfile.mkdtemp(prefix="harbor-ha-drill-"))
        self.workdir.chmod(0o755)  # keepalived's script security: nothing on the path writable by others
        libexec = self.workdir / "libexec"
        libexec.mkdir(mode=0o755, exist_ok=True)
        self.pair = VrrpPair(name=self.settings.name, addresses=NODE_ADDRESSES, interface=INTERFACE,
                             libexec=str(libexec))
        configs = [self._install(index) for index in (0, 1)]
        self._emulator()
        self._network()
        instances = self._ec2()
        certificate = self_signed_certificate(self.workdir, ["127.0.0.1", *NODE_ADDRESSES])
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.workdir),
               "AWS_ENDPOINT_URL": "http://%s:%d" % EC2_ENDPOINT,
               "AWS_ACCESS_KEY_ID": "harbor-ha-drill", "AWS_SECRET_ACCESS_KEY": "harbor-ha-drill",
               "AWS_EC2_METADATA_DISABLED": "true", "LANG": "C.UTF-8"}
        for index, namespace in enumerate(self.namespaces):
            health = HealthSwitch(f"harbor-{index}")
            self._serve(ImdsStandIn.for_instance(instances[index], self.region), namespace.name, IMDS_ADDRESS, 80)
            self._closers.append(Relay(listening_socket(namespace.name, *EC2_ENDPOINT), self.emulator_address).close)
            if self.stack == "active-standby":
                served = serve_https(HarborHealthStandIn.with_switch(health),
                                     listening_socket(namespace.name, "127.0.0.1", 443), certificate)
                self._closers.append(served.close)
            argv = [tools["keepalived"], "--dont-fork", "--log-console", "--log-detail", f"--use-file={configs[index]}",
                    *(f"{option}{self.workdir}/{option[2:-1]}-{index}.pid" for option in PID_FILE_OPTIONS)]
            if self.stack == "active-active":
                argv.append("--vrrp")  # no IPVS in this kernel; the LVS half runs in the guest
            node_env = {**env, "HARBOR_HA_RUN_DIR": str(self.workdir / f"run-{index}")}  # each node's own /run
            self.nodes.append(Node(index=index, namespace=namespace, instance_id=instances[index],
                                   config=configs[index], argv=argv, env=node_env,
                                   log=self.workdir / f"keepalived-{index}.log",
                                   health=health))
        first, second = self.nodes
        began = time.monotonic()
        first.start()
        if first.wait_state("MASTER", began, 30) is None or self.wait_vip(first, began, 30) is None:
            raise DrillSetupError(f"node 0 did not become MASTER with the Elastic IP; see {first.log}")
        began = time.monotonic()
        second.start()
        if second.wait_state("BACKUP", began, 30) is None:
            raise DrillSetupError(f"node 1 did not start as BACKUP; see {second.log}")

    def _install(self, index: int) -> Path:
        """What node ``index``'s user-data installs, written where the drill runs it: the stack's own
        rendering (``harbor_ha.keepalived``), with the drill's addresses and directory."""
        if self.stack == "active-active":
            # A director's VRRP half: harbor-vrrp.service's file; the LVS half runs in the guest.
            cloud, path = director_cloud_config(self.pair, index, pool_parameter_name(self.pair.name)), VRRP_CONFIG_PATH
        else:
            cloud, path = standby_cloud_config(self.pair, index), CONFIG_PATH
        config = None
        for item in cloud.files:
            if item.path == path:
                config = self.workdir / f"keepalived-{index}.conf"
                config.write_text(item.content)
            elif item.path.startswith(self.pair.libexec):
                target = Path(item.path)
                target.write_text(item.content)
                target.chmod(0o755)
        assert config is not None and LIBEXEC not in config.read_text()
        return config

    def _emulator(self) -> None:
        from harbor_ha.local import emulator

        self._emulator_dir = self.workdir / "emulator"
        running, _ = emulator.start(self._emulator_dir)
        os.setpriority(os.PRIO_PROCESS, running.pid, NICENESS)
        self._closers.append(lambda: emulator.stop(self._emulator_dir))
        self.emulator_address = (emulator.HOST, running.port)
        self.emulator_url = running.endpoint

    def _network(self) -> None:
        base = netns.new_prefix()
        self.lan = Namespace(f"{base}lan")
        self.namespaces = [Namespace(f"{base}n{index}") for index in (0, 1)]
        self._closers.append(lambda: [n.delete() for n in (*self.namespaces, self.lan)])
        self.lan.ip("link", "add", "br0", "type", "bridge")
        self.lan.ip("link", "set", "br0", "up")
        for index, namespace in enumerate(self.namespaces):
            port = self.port(index)
            netns.ip("link", "add", port, "netns", self.lan.name, "type", "veth", "peer", "name", INTERFACE,
                     "netns", namespace.name)
            self.lan.ip("link", "set", port, "master", "br0", "up")
            namespace.ip("addr", "add", f"{NODE_ADDRESSES[index]}/{SUBNET_BITS}", "dev", INTERFACE)
            namespace.ip("link", "set", INTERFACE, "up")
            namespace.ip("addr", "add", f"{IMDS_ADDRESS}/32", "dev", "lo")

    @staticmethod
    def port(index: int) -> str:
        return f"port{index}"

    def _ec2(self) -> list[str]:
        """Two instances and the Elastic IP tagged for the pair, first associated with node 0 (as the stacks do
        at deploy)."""
        ec2 = self.ec2()
        vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.0.0/24")["Subnet"]["SubnetId"]
        image = ec2.describe_images()["Images"][0]["ImageId"]
        reservation = ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, SubnetId=subnet, InstanceType="t3.small")
        instances = [i["InstanceId"] for i in reservation["Instances"]]
        self.allocation = ec2.allocate_address(Domain="vpc", TagSpecifications=[{
            "ResourceType": "elastic-ip", "Tags": [{"Key": VIP_TAG_KEY, "Value": self.pair.name}]}])["AllocationId"]
        ec2.associate_address(AllocationId=self.allocation, InstanceId=instances[0])
        return instances

    def ec2(self):
        import boto3

        return boto3.client("ec2", region_name=self.region, endpoint_url=self.emulator_url,
                            aws_access_key_id="harbor-ha-drill", aws_secret_access_key="harbor-ha-drill")

    def _serve(self, handler, namespace: str, host: str, port: int) -> Served:
        served = Served(handler, listening_socket(namespace, host, port))
        self._closers.append(served.close)
        return served

    # ---- observation ----------------------------------------------------------------------------------------
    def vip_holder(self) -> str | None:
        address = self._client.describe_addresses(AllocationIds=[self.allocation])["Addresses"][0]
        return address.get("InstanceId")

    def wait_vip(self, node: Node, since: float, timeout: float, interval: float = 0.05) -> float | None:
        """The time the Elastic IP was first seen on ``node``'s instance (polling the emulator)."""
        if not hasattr(self, "_client"):
            self._client = self.ec2()
        deadline = since + timeout
        while time.monotonic() < deadline:
            if self.vip_holder() == node.instance_id:
                return time.monotonic()
            time.sleep(interval)
        return None

    def masters(self) -> list[Node]:
        return [node for node in self.nodes if node.state == "MASTER"]

    def master_and_backup(self) -> tuple[Node, Node]:
        masters = self.masters()
        if len(masters) != 1:
            raise DrillSetupError(f"expected one MASTER, found {[n.name for n in masters]}")
        master = masters[0]
        return master, self.nodes[1 - master.index]

    # ---- faults -------------------------------------------------------------------------------------------
    def cut_link(self, node: Node) -> None:
        """Cut ``node`` off the subnet: its end of the link leaves the bridge, and the node's own interface stays
        up (in a VPC a node never sees a carrier change; it just stops hearing its peer)."""
        self.lan.ip("link", "set", "dev", self.port(node.index), "nomaster")

    def restore_link(self, node: Node) -> None:
        self.lan.ip("link", "set", "dev", self.port(node.index), "master", "br0")

    # ---- tear-down -------------------------------------------------------------------------------------------
    def _end_processes_of_the_workdir(self, timeout: float = 10) -> None:
        """Whatever still names the drill's directory on its command line (a keepalived of an earlier start of a
        node, a script of it), ended: the drill leaves no process behind."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = processes_naming(str(self.workdir))
            if not left:
                return
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        for close in reversed(self._closers):
            try:
                close()
            except Exception:  # noqa: BLE001 (tear-down goes on; what is left is checked by leftovers())
                pass
        self._closers.clear()
        if hasattr(self, "workdir"):
            self._end_processes_of_the_workdir()
        if not self.keep_files and self._workdir_given is None and hasattr(self, "workdir"):
            shutil.rmtree(self.workdir, ignore_errors=True)
