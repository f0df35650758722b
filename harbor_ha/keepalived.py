"""keepalived configuration for harbor-ha's two VRRP pairs, and the programs it runs.

Two uses share one VRRP setup:

* the load-balancer pair of the active-active topology (``director_configs``): keepalived elects which
  director holds the VIP and runs LVS (IPVS) in front of the Harbor nodes;
* the two Harbor VMs of the active-standby topology (``standby_configs``): keepalived elects which node holds
  the VIP, and a node whose Harbor is unhealthy gives it up.

VRRP in a VPC. A VPC carries no multicast, so VRRP runs unicast (``unicast_src_ip`` / ``unicast_peer``)
between the two fixed private addresses. The VIP is an Elastic IP, not an address on an interface: when a
node becomes MASTER, ``notify_master`` runs the vip-notify program, which re-associates the Elastic IP
(tagged ``harbor-ha:vip=<name>``) to that instance. Both nodes start as BACKUP with different priorities and
``nopreempt``: the first master keeps the VIP until it fails, so a recovered node does not move the address
back (each move is an AWS API call and a few seconds of refused connections). After a split brain (both nodes
MASTER while they could not hear each other) the lower-priority master steps down when the adverts meet again,
and the one that stays runs vip-notify (``notify_master_rx_lower_pri``) to take the VIP back if the other had
moved it. Two deployments sharing a subnet are kept apart by the router id (derived from the pair's name) and
by accepting adverts only from the configured peer (``vrrp_check_unicast_src``); what protects VRRP is the
security group admitting protocol 112 from the peer only.

Timing (VRRPv3, ``ADVERT_SECONDS``). A backup declares the master dead after 3 adverts plus a skew; with
VRRPv2's whole-second adverts that alone is about 3.6 s, and vip-notify then needs 1-3 s more. The failover
drill (``harbor-ha drill``) measures the whole move from a killed master to the Elastic IP on its peer.
keepalived wants at least one ``virtual_ipaddress`` (``keepalived -t`` rejects an instance without one), so
the master holds a host-scoped marker address on ``lo`` (``MASTER_MARKER``), which never leaves the machine
and shows which node is master (``ip addr show lo``).

Health. Harbor's ``GET /api/v2.0/health`` answers HTTP 200 also when unhealthy, so keepalived's HTTP_GET /
SSL_GET (status code or body digest) cannot judge it; its ``regex`` option depends on a build flag that
distributions do not all set. A ``MISC_CHECK`` (directors) or ``vrrp_script`` (standby pair) runs
check-harbor-health, which reads the body instead.

LVS in a VPC. Direct routing needs layer-2 adjacency, which a VPC does not give across subnets and AZs, so
the directors use NAT mode (``lb_kind NAT``) in one-arm form: the virtual server is the director's own
private address (the Elastic IP maps to it), and the director SNATs what IPVS sends to a Harbor node to its
own address, so the node's answer comes back through the director without route-table changes. That needs
``net.ipv4.ip_forward=1``, ``net.ipv4.vs.conntrack=1`` (SNAT of IPVS connections) and an nftables SNAT rule,
which lvs-nat-setup applies before keepalived starts on every boot. Every packet the director sends or
receives carries its own address, so EC2's source/destination check can stay on.

The pool follows the fleet without touching VRRP. On the directors keepalived runs as two processes, each
with its own unit and file: ``harbor-vrrp`` (``keepalived --vrrp``, ``vrrp.conf``, from user-data, never
changed) and ``harbor-lvs`` (``keepalived --check``, ``lvs.conf``). The real-server list lives in an SSM
parameter that Terraform writes (``pool_parameter_name``); lb-pool, on a 15 s timer, renders it into
``lvs.conf``, checks it with ``keepalived -t`` and reloads only the checker process (a reload of one
process that also runs VRRP has been reported to pass VRRP through BACKUP). A parameter rather than
discovery by tag: Terraform then owns the pool, so draining a server (weight 0) before its instance is
destroyed is an explicit, ordered step of ``harbor-ha up``, and the parameter's version is what the
directors acknowledge (their ``harbor-ha:lb-pool`` tag). Real servers start down (``alpha``): a new server
takes traffic only once its health body says healthy.

Scheduling: ``wlc`` (weighted least connections) with a 300 s ``persistence_timeout``, so that the many
requests of one client (a UI session, an image push) stay on one node while it is healthy. Correctness does
not rely on it: the nodes share database, Redis, storage and secrets.
"""

from __future__ import annotations

import hashlib
import json
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Sequence

from harbor_ha.cloud_init import CloudConfig, WriteFile, without_comment_lines

TEMPLATES = Path(__file__).parent / "templates" / "keepalived"
LIBEXEC = "/usr/local/libexec/harbor-ha"
CONFIG_PATH = "/etc/keepalived/keepalived.conf"
# The directors run VRRP and the LVS checker as two keepalived processes, each with its own file.
VRRP_CONFIG_PATH = "/etc/keepalived/vrrp.conf"
LVS_CONFIG_PATH = "/etc/keepalived/lvs.conf"
LVS_PID_FILE = "/run/harbor-ha-lvs/keepalived.pid"
HEALTH_PATH = "/api/v2.0/health"
MASTER_MARKER = "169.254.100.1/32"
PRIORITIES = (150, 100)
SERVICE_PORTS = (443, 80)
PERSISTENCE_SECONDS = 300
# VRRPv3 adverts every 0.5 s: a dead master is noticed after 3 x 0.5 s + skew = 1.7-1.8 s instead of VRRPv2's
# 3.6 s (whole seconds only), so that a killed master's VIP is on its peer within 4 s including vip-notify's
# AWS call. Shorter intervals gain little more and start to mistake a busy small instance for a dead one.
ADVERT_SECONDS = 0.5
DEFAULT_INTERFACE = "ens5"


def program_text(name: str) -> str:
    """The text of one of the node programs: ``check-harbor-health``, ``vip-notify``, ``lvs-nat-setup`` (shell),
    ``lb-pool`` (Python)."""
    shell = TEMPLATES / f"{name}.sh"
    return (shell if shell.exists() else TEMPLATES / f"{name}.py").read_text()


def _distinct_addresses(addresses: Sequence[str]) -> bool:
    """Distinct IPv4 addresses; a Terraform reference (``${...}``, known only at deploy) passes."""
    if len(set(addresses)) != len(addresses):
        return False
    try:
        for address in addresses:
            if "${" not in address:
                ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class VrrpPair:
    """Two nodes that elect which one holds the VIP."""

    name: str
    """The VIP's name: the value of the Elastic IP's ``harbor-ha:vip`` tag and the VRRP instance's name."""
    addresses: tuple[str, str]
    """The fixed private IPv4 addresses of node 0 and node 1."""
    interface: str = DEFAULT_INTERFACE
    """The network interface VRRP runs on. Default ``ens5``, the first interface of Amazon Linux 2023 on
    Nitro instance types."""
    libexec: str = LIBEXEC
    """Directory holding check-harbor-health and vip-notify. Default ``/usr/local/libexec/harbor-ha``."""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"name = {self.name!r}: allowed is letters, digits, '-' and '_'")
        if not (len(self.addresses) == 2 and _distinct_addresses(self.addresses)):
            raise ValueError(f"addresses = {list(self.addresses)!r}: allowed is two distinct IPv4 addresses")

    def _digest(self, purpose: str) -> bytes:
        return hashlib.sha256(f"{purpose}:{self.name}".encode()).digest()

    @property
    def virtual_router_id(self) -> int:
        """1 to 255, derived from the name so that pairs of different deployments differ."""
        return self._digest("vrid")[0] % 255 + 1

    def peer(self, index: int) -> str:
        return self.addresses[1 - index]

    def program(self, name: str) -> str:
        return f"{self.libexec}/{name}"

    def health_command(self, host: str) -> str:
        return f"{self.program('check-harbor-health')} https://{host}{HEALTH_PATH}"


def _block(head: str, items: Sequence[str]) -> str:
    """``head { ... }`` with each item (a line or a nested block) indented one level."""
    body = "".join(f"    {line}\n" for item in items for line in item.splitlines())
    return f"{head} {{\n{body}}}\n"


def _global_defs(pair: VrrpPair, index: int) -> str:
    # Scripts run as root (they need the instance role and IPVS); script security makes keepalived refuse
    # scripts that a non-root user could modify.
    # VRRPv3 has no authentication: a node accepts adverts from its unicast peer only. A master that meets a
    # higher-priority one (a split brain healing) sends one last advert before it steps down, so that the
    # master that stays hears it and runs notify_master_rx_lower_pri (without it that advert often never comes).
    return _block("global_defs", [f"router_id {pair.name}-{index}", "script_user root", "enable_script_security",
                                  "vrrp_version 3", "vrrp_check_unicast_src", "vrrp_higher_prio_send_advert"])


def _vrrp_instance(pair: VrrpPair, index: int, extra: Sequence[str] = ()) -> str:
    return _block(f"vrrp_instance {pair.name}", [
        "state BACKUP",
        f"interface {pair.interface}",
        f"virtual_router_id {pair.virtual_router_id}",
        f"priority {PRIORITIES[index]}",
        "nopreempt",
        f"advert_int {ADVERT_SECONDS}",
        f"unicast_src_ip {pair.addresses[index]}",
        _block("unicast_peer", [pair.peer(index)]),
        _block("virtual_ipaddress", [f"{MASTER_MARKER} dev lo scope host"]),
        *extra,
        f'notify_master "{pair.program("vip-notify")} {pair.name}"',
        f'notify_backup "{pair.program("vip-notify")} {pair.name} --prepare"',
        f'notify_master_rx_lower_pri "{pair.program("vip-notify")} {pair.name} --check"',
    ])


def director_configs(pair: VrrpPair) -> tuple[str, str]:
    """The VRRP keepalived.conf (``VRRP_CONFIG_PATH``) of director 0 and 1: only the election of the VIP
    holder. The LVS pool is another keepalived process with its own file, which lb-pool renders on the
    director from the deployment's real-server list (see ``lb_pool_settings``)."""
    return tuple("\n".join([_global_defs(pair, i), _vrrp_instance(pair, i)]) for i in (0, 1))  # type: ignore


def standby_configs(pair: VrrpPair) -> tuple[str, str]:
    """keepalived.conf of Harbor node 0 and 1 of an active-standby pair: a node whose local Harbor reports
    itself unhealthy three times in a row enters FAULT and leaves the VIP to its peer."""
    # Every 2 s, 3 failures: an unhealthy Harbor gives up the VIP after 4-6 s (the check's curl gives up
    # after 3 s, so a hanging Harbor takes at most one interval longer); a single slow answer does not.
    script = _block("vrrp_script harbor_health", [
        f'script "{pair.health_command("127.0.0.1")}"', "interval 2", "timeout 3", "fall 3", "rise 2"])
    track = _block("track_script", ["harbor_health"])
    return tuple(  # type: ignore[return-value]
        "\n".join([_global_defs(pair, i), script, _vrrp_instance(pair, i, [track])]) for i in (0, 1))


def lvs_nat_setup(own_ip: str) -> str:
    """The boot-time script of one director: forwarding, IPVS conntrack and the SNAT rule, whose targets
    (the nftables set ``harbor_lvs real_servers``) lb-pool keeps equal to the pool."""
    return Template(program_text("lvs-nat-setup")).substitute(
        own_ip=own_ip, ports=", ".join(map(str, SERVICE_PORTS)))


def pool_parameter_name(name: str) -> str:
    """The SSM parameter holding the real-server list of deployment ``name`` (written by Terraform)."""
    return f"/harbor-ha/{name}/lb/real-servers"


def pool_document(servers: Sequence[str], draining: Sequence[str] = ()) -> dict:
    """The real-server list as lb-pool reads it: weight 1 serves, weight 0 drains (IPVS quiesced)."""
    return {"servers": [{"address": s, "weight": 0 if s in draining else 1} for s in servers]}


def lb_pool_settings(pair: VrrpPair, index: int, parameter: str) -> dict:
    """``/etc/harbor-ha/lb-pool.json`` of director ``index``: what lb-pool renders and where it puts it."""
    return {"parameter": parameter, "own_ip": pair.addresses[index], "router_id": f"{pair.name}-lvs-{index}",
            "ports": list(SERVICE_PORTS), "persistence_timeout": PERSISTENCE_SECONDS,
            "health_program": pair.program("check-harbor-health"), "health_path": HEALTH_PATH,
            "config": LVS_CONFIG_PATH, "pid_file": LVS_PID_FILE, "ack_file": "/run/harbor-ha-lvs/acknowledged",
            "keepalived": "/usr/sbin/keepalived", "nft_table": "harbor_lvs", "nft_set": "real_servers"}


def node_program(name: str, libexec: str = LIBEXEC, content: str | None = None) -> WriteFile:
    """The node program ``name`` (text: ``content`` or ``program_text(name)``) installed in ``libexec``, as
    user-data carries it: shell comment lines left out (user-data has 16 KiB)."""
    text = program_text(name) if content is None else content
    return WriteFile(path=f"{libexec}/{name}", permissions="0755",
                     content=without_comment_lines(text) if text.startswith("#!/bin/") else text)


def _script(pair: VrrpPair, name: str, content: str) -> WriteFile:
    return node_program(name, pair.libexec, content)


def vrrp_cloud_config(pair: VrrpPair, config: str) -> CloudConfig:
    """What a VRRP node installs: keepalived, its configuration, the health check and vip-notify. keepalived
    is enabled and started by the caller once everything it depends on is in place."""
    return CloudConfig(
        packages=("keepalived",),
        # Compressed: an active-standby node's user-data (a whole Harbor besides) is near EC2's 16 KiB.
        files=(WriteFile(path=CONFIG_PATH, content=config, permissions="0640"),
               _script(pair, "check-harbor-health", program_text("check-harbor-health")),
               _script(pair, "vip-notify", program_text("vip-notify"))),
    )


def standby_cloud_config(pair: VrrpPair, index: int) -> CloudConfig:
    """The keepalived part of Harbor node ``index``'s user-data in an active-standby pair, keepalived started."""
    return vrrp_cloud_config(pair, standby_configs(pair)[index]).merge(
        CloudConfig(commands=("systemctl enable --now keepalived",)))


def _unit(name: str, **values: str) -> WriteFile:
    return WriteFile(path=f"/etc/systemd/system/{name}",
                     content=Template((TEMPLATES / name).read_text()).substitute(libexec=LIBEXEC, **values))


def director_cloud_config(pair: VrrpPair, index: int, pool_parameter: str) -> CloudConfig:
    """The whole user-data of director ``index``: two keepalived processes (VRRP alone in harbor-vrrp,
    the LVS checker alone in harbor-lvs) and lb-pool, which keeps the checker's pool equal to the SSM
    parameter ``pool_parameter``. Nothing here depends on the Harbor servers, so scaling never changes it."""
    return CloudConfig(
        packages=("keepalived", "ipvsadm", "nftables"),
        files=(WriteFile(path=VRRP_CONFIG_PATH, content=director_configs(pair)[index], permissions="0640"),
               WriteFile(path="/etc/harbor-ha/lb-pool.json",
                         content=json.dumps(lb_pool_settings(pair, index, pool_parameter), indent=1) + "\n"),
               *(_script(pair, name, program_text(name)) for name in ("check-harbor-health", "vip-notify", "lb-pool")),
               _script(pair, "lvs-nat-setup", lvs_nat_setup(pair.addresses[index])),
               _unit("harbor-vrrp.service", config=VRRP_CONFIG_PATH),
               _unit("harbor-lvs.service", config=LVS_CONFIG_PATH, pid_file=LVS_PID_FILE),
               _unit("harbor-lb-pool.service"), _unit("harbor-lb-pool.timer")),
        commands=("systemctl daemon-reload",
                  "systemctl enable --now harbor-vrrp.service harbor-lvs.service harbor-lb-pool.timer"),
    )
