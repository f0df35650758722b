"""The LVS drill, run inside the QEMU guest (``python -m harbor_ha.drill.lvs_in_guest SETTINGS``) by
``harbor_ha.drill.lvs``: a director as the stack runs it (lvs-nat-setup; keepalived --vrrp on vrrp.conf and
keepalived --check on the lvs.conf that lb-pool's own code renders, checks with keepalived -t, installs with
its SNAT set and reloads by SIGHUP; only lb-pool's read of the SSM parameter is left out, the pool documents
come from the share), Harbor stand-ins in namespaces as real servers, and a
client with several addresses (several clients) reaching them through the director's address. Writes what it
saw to ``results.json`` beside SETTINGS. Uses the standard library only (it runs on the host's python3).
"""

from __future__ import annotations

import json
import os
import re
import runpy
import ssl
import subprocess
import sys
import time
from pathlib import Path

from harbor_ha.drill.netns import Namespace, in_namespace, ip, listening_socket, tcp_socket
from harbor_ha.drill.standins import HarborHealthStandIn, HealthSwitch, Served, serve_https

STATE_RE = re.compile(r"\) Entering (MASTER|BACKUP|FAULT) STATE")
ASK_SECONDS = 20
ATTEMPTS = 3
CONTROL_SECONDS, CONTROL_FACTOR = 3.0, 5
# How long a pool change may take before it counts as not happening (the figures are measured, not bounded,
# by this): a health check on the emulated CPU of a loaded machine can take most of its 20 s misc_timeout.
POOL_SECONDS = 60


class NamedStandIn(HarborHealthStandIn):
    """The Harbor health stand-in, saying which server answered (header ``X-Stand-In``) so that the client
    side sees where IPVS sent it."""

    def end_headers(self):
        self.send_header("X-Stand-In", self.switch.name)
        super().end_headers()


class Director:
    def __init__(self, s: dict) -> None:
        self.s = s
        self.ns = Namespace("director")
        self.log = Path(s["share"]) / "keepalived-vrrp.log"
        self.checker_log = Path(s["share"]) / "keepalived-lvs.log"
        self.lb_pool = runpy.run_path(s["lb_pool_program"], run_name="lb_pool")
        self.process: subprocess.Popen | None = None
        self.checker: subprocess.Popen | None = None

    def nat_setup(self) -> None:
        subprocess.run(self.ns.command("bash", self.s["nat_setup"]), check=True)

    def install_pool(self, document: str, reload: bool) -> None:
        """What lb-pool does with a new parameter value, by lb-pool's own functions, inside the director's
        namespace (its nft and the checker's SIGHUP)."""
        pool = self.lb_pool["parse_pool"](document)
        stack, guest = self.s["misc_timeout"]
        text = self.lb_pool["render"](self.s["lb_pool"], pool)
        assert stack in text, "the stack's misc_timeout is no longer " + stack
        in_namespace(self.ns.name, lambda: self.lb_pool["install"](self.s["lb_pool"], text.replace(stack, guest),
                                                                   pool, reload))

    def snat_targets(self, document: str) -> None:
        """lb-pool's run for an unchanged pool: the SNAT set filled again (after lvs-nat-setup emptied it)."""
        settings, pool = self.s["lb_pool"], self.lb_pool["parse_pool"](document)
        in_namespace(self.ns.name, lambda: self.lb_pool["run"](["nft", "-f", "-"], "nft (SNAT targets)",
                                                               stdin=self.lb_pool["nft_rules"](settings, pool)))

    def start(self) -> None:
        env = {"PATH": f"{self.s['share']}/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HARBOR_HA_NOTIFY_ATTEMPTS": "1",
               "HARBOR_HA_RUN_DIR": "/run/harbor-ha"}
        for unit in ("harbor-ha-vrrp", "harbor-ha-lvs"):  # the units' RuntimeDirectory
            os.makedirs(f"/run/{unit}", exist_ok=True)
        with self.log.open("w") as log, self.checker_log.open("w") as checker_log:
            self.process = subprocess.Popen(self.ns.command(*self.s["vrrp_argv"]), env=env, stdout=log,
                                            stderr=subprocess.STDOUT)
            self.checker = subprocess.Popen(self.ns.command(*self.s["lvs_argv"]), env=env, stdout=checker_log,
                                            stderr=subprocess.STDOUT)

    def stop(self) -> None:
        for process in (self.process, self.checker):
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()

    def states(self) -> list[str]:
        """The VRRP states keepalived reported so far."""
        return [m.group(1) for m in STATE_RE.finditer(self.log.read_text(errors="replace"))]

    def pool(self, port: int = 443) -> set[str]:
        """The real servers IPVS has for the virtual server on ``port``: read from the kernel's table as
        keepalived's own process sees it (no ipvsadm process: each costs the emulated CPU a lot)."""
        table = Path(f"/proc/{self.checker.pid}/net/ip_vs").read_text()
        wanted, servers, current = f"{_hex_address(self.s['director'])}:{port:04X}", set(), None
        for line in table.splitlines():
            fields = line.split()
            if fields[:1] == ["TCP"]:
                current = fields[1]
            elif fields[:1] == ["->"] and current == wanted and fields[2] == "Masq":
                address = fields[1].split(":")[0]
                servers.add(".".join(str(int(address[i:i + 2], 16)) for i in range(0, 8, 2)))
        return servers

    def became_master(self) -> bool:
        return "MASTER" in self.states()

    def is_master(self) -> bool:
        return "169.254.100.1/32" in self.ns.ip("-o", "addr", "show", "dev", "lo")


def _hex_address(address: str) -> str:
    return "".join(f"{int(part):02X}" for part in address.split("."))


def request(namespace: str, source: str, director: str, timeout: float) -> str | None:
    """A client's HTTPS request from ``source`` (inside ``namespace``) to the director: the name of the stand-in
    that answered (its ``X-Stand-In`` header), None if none did within ``timeout``. Python's own TLS, not a
    curl process: IPVS sees the same TCP connection, and every process started costs the emulated CPU
    seconds. The certificate is not verified, as check-harbor-health does not (it names the servers)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    sock = tcp_socket(namespace)
    try:
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect((director, 443))
        with context.wrap_socket(sock) as tls:
            tls.sendall(f"GET /api/v2.0/health HTTP/1.1\r\nHost: {director}\r\nConnection: close\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head and time.monotonic() < deadline:
                tls.settimeout(max(deadline - time.monotonic(), 0.01))
                chunk = tls.recv(4096)
                if not chunk:
                    break
                head += chunk
    except OSError:
        return None
    finally:
        sock.close()
    match = re.search(rb"X-Stand-In: (\S+)", head)
    return match.group(1).decode() if match else None


def wait(predicate, timeout: float, step: float = 0.25) -> float | None:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if predicate():
            return time.monotonic() - began
        time.sleep(step)
    return None


def main(settings_path: str) -> int:
    s = json.loads(Path(settings_path).read_text())
    results: dict = {"checks": {}, "cycles": [], "notes": []}
    out = Path(settings_path).with_name("results.json")
    began = time.monotonic()

    def check(name: str, ok: bool, detail: str = "") -> None:
        """Record a check, with the seconds since the guest's program began (where a drill spends its time)."""
        results["checks"][name] = {"ok": bool(ok), "detail": detail, "at": round(time.monotonic() - began, 1)}
        out.write_text(json.dumps(results, indent=2))

    ip("link", "add", "br0", "type", "bridge")
    ip("link", "set", "br0", "up")
    director = Director(s)
    switches: dict[str, HealthSwitch] = {}
    served: list[Served] = []
    certificate = (s["certificate"], s["key"])

    def attach(ns: Namespace, name: str, addresses: list[str], interface: str = "eth0") -> None:
        ip("link", "add", f"p-{name}", "type", "veth", "peer", "name", interface, "netns", ns.name)
        ip("link", "set", f"p-{name}", "master", "br0", "up")
        for address in addresses:
            ns.ip("addr", "add", f"{address}/24", "dev", interface)
        ns.ip("link", "set", interface, "up")

    def real_server(index: int, address: str) -> None:
        ns = Namespace(f"rs{index}")
        attach(ns, f"rs{index}", [address])
        switch = switches[address] = HealthSwitch(f"rs{index}")
        handler = NamedStandIn.with_switch(switch)
        served.append(serve_https(handler, listening_socket(ns.name, address, 443), certificate))
        served.append(Served(handler, listening_socket(ns.name, address, 80)))

    attach(director.ns, "director", [s["director"]], interface="ens5")
    for index, address in enumerate(s["real_servers"]):
        real_server(index, address)
    client = Namespace("client")
    attach(client, "client", s["clients"])

    answer_seconds: list[float] = []

    def ask(source: str, timeout: float = ASK_SECONDS) -> str | None:
        """Which stand-in answered a request from ``source`` to the director (None: no answer)."""
        began_asking = time.monotonic()
        server = request(client.name, source, s["director"], timeout)
        if server is not None:
            answer_seconds.append(time.monotonic() - began_asking)
        return server

    director.nat_setup()
    director.install_pool(s["pool"], reload=False)  # harbor-lvs's ExecStartPre: lvs-nat-setup, lb-pool --no-reload
    director.start()
    became_master = wait(director.became_master, 60)
    check("director becomes MASTER", became_master is not None, f"{became_master} s")
    full = set(s["real_servers"])
    in_pool = wait(lambda: director.pool(443) == full and director.pool(80) == full, POOL_SECONDS)
    check("healthy servers in the pool", in_pool is not None, f"{sorted(director.pool(443))}")

    clients = s["clients"]
    answers = {source: ask(source) for source in clients[:6]}
    servers_seen = set(answers.values())
    check("requests spread over the healthy servers", None not in servers_seen and len(servers_seen) == len(full),
          json.dumps(answers))
    first = clients[0]
    repeated = [ask(first) for _ in range(4)]
    # A request that timed out on the loaded, emulated CPU says nothing about persistence; a different server does.
    answered = [server for server in [answers[first], *repeated] if server is not None]
    check("persistence keeps one client on one server", len(answered) >= 3 and len(set(answered)) == 1,
          json.dumps(repeated))

    subprocess.run(director.ns.command("nft", "delete", "table", "ip", "harbor_lvs"), check=True)
    control = clients[6]
    # The control waits several times as long as any answer took so far: no answer then is the missing SNAT.
    control_seconds = min(ASK_SECONDS, max(CONTROL_SECONDS, CONTROL_FACTOR * max(answer_seconds, default=0)))
    check("without the SNAT rule no answer comes back (control)", ask(control, control_seconds) is None,
          f"waited {control_seconds:.1f} s")
    director.nat_setup()
    director.snat_targets(s["pool"])
    # As for persistence: one request lost on the loaded, emulated CPU says nothing; an answer does.
    check("with the SNAT rule the answer comes back", any(ask(control) is not None for _ in range(ATTEMPTS)))

    victim = s["real_servers"][0]
    for cycle in range(s["runs"]):
        switches[victim].healthy = False
        out_after = wait(lambda: victim not in director.pool(443) and victim not in director.pool(80), POOL_SECONDS)
        switches[victim].healthy = True
        back_after = wait(lambda: victim in director.pool(443) and victim in director.pool(80), POOL_SECONDS)
        results["cycles"].append({"out_of_pool": out_after and round(out_after, 2),
                                  "back_in_pool": back_after and round(back_after, 2)})
        out.write_text(json.dumps(results, indent=2))
    switches[victim].healthy = False
    wait(lambda: victim not in director.pool(443), POOL_SECONDS)
    unhealthy_answers = {ask(source) for source in clients[7:10]}
    # As for persistence: a request that timed out says nothing; one served by rs0 fails the check.
    check("an unhealthy server gets no requests", "rs0" not in unhealthy_answers and unhealthy_answers - {None},
          json.dumps(sorted(map(str, unhealthy_answers))))
    switches[victim].healthy = True
    wait(lambda: victim in director.pool(443), POOL_SECONDS)

    # Pool change: a new Harbor server, the new configuration and SNAT set, keepalived reloaded (SIGHUP).
    added = s["added_server"]
    real_server(len(s["real_servers"]), added)
    reload_at = len(director.states())
    director.install_pool(s["grown_pool"], reload=True)
    # The added server alone: on a loaded, emulated CPU another server's check may time out meanwhile. Its
    # first check waits for its stand-in to start (a Python process in the guest) and for the checker's reload.
    in_after = wait(lambda: added in director.pool(443) and added in director.pool(80), 2 * POOL_SECONDS)
    check("the added server enters the pool after the reload", in_after is not None,
          f"{in_after} s; pools: 443 {sorted(director.pool(443))}, 80 {sorted(director.pool(80))}")
    time.sleep(2)
    states = director.states()[reload_at:]
    check("the reload keeps the MASTER", director.process.poll() is None and director.is_master()
          and "BACKUP" not in states and "FAULT" not in states, f"states after the reload: {states}")
    # New clients, until one reaches the added server: wlc sends them there first, while it is in the pool (on
    # the loaded, emulated CPU its check may time out for a while; each answer says whether it was in).
    added_name, newcomer = f"rs{len(s['real_servers'])}", []
    for source in clients[10:]:
        in_pool = wait(lambda: added in director.pool(443), POOL_SECONDS) is not None
        newcomer.append(f"{ask(source)}{'' if in_pool else ' (the added server out of the pool)'}")
        if newcomer[-1] == added_name:
            break
    check("the added server receives requests", added_name in newcomer, json.dumps(newcomer))

    director.stop()
    for server in served:
        server.close()
    out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
