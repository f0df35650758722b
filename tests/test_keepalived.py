"""keepalived configuration: every rendered file passes ``keepalived -t``, the two files of a pair differ only
where a node's identity requires it, and the health check reads Harbor's answer body."""

from __future__ import annotations

import difflib
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from harbor_ha.cloud_init import written_files
from harbor_ha.keepalived import (
    CONFIG_PATH, LIBEXEC, MASTER_MARKER, TEMPLATES, VRRP_CONFIG_PATH, VrrpPair, director_cloud_config,
    director_configs, lvs_nat_setup, program_text, standby_cloud_config, standby_configs,
)

from conftest import QuietHandler, loopback_server, require_tool
from keepalived_helpers import (  # noqa: F401 (two_namespaces is a fixture)
    NAMESPACES, VETH_ADDRESSES, host_interface, install_programs, keepalived_check, two_namespaces, wait_for,
)

ADDRESSES = ("10.40.0.10", "10.40.64.10")


@pytest.fixture
def pair(tmp_path) -> VrrpPair:
    install_programs(tmp_path)
    return VrrpPair(name="harbor-vip", addresses=ADDRESSES, interface=host_interface(), libexec=str(tmp_path))


@pytest.mark.parametrize("kind", ["director", "standby"])
def test_every_rendered_configuration_passes_keepalived_check(pair, tmp_path, kind):
    configs = director_configs(pair) if kind == "director" else standby_configs(pair)
    for index, text in enumerate(configs):
        result = keepalived_check(text, tmp_path)
        assert result.returncode == 0, f"{kind} {index}:\n{result.stderr}\n{text}"


def test_keepalived_check_rejects_a_broken_configuration(pair, tmp_path):
    """The judge used above does notice mistakes."""
    text = director_configs(pair)[0].replace("unicast_peer {", "unicast_peers {")
    assert keepalived_check(text, tmp_path).returncode != 0
    (tmp_path / "check-harbor-health").unlink()
    assert keepalived_check(standby_configs(pair)[0], tmp_path).returncode != 0, "a missing vrrp_script"


def changed_lines(first: str, second: str) -> list[str]:
    return [line for line in difflib.unified_diff(first.splitlines(), second.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


@pytest.mark.parametrize("kind", ["director", "standby"])
def test_the_two_nodes_differ_only_in_identity(pair, kind):
    first, second = director_configs(pair) if kind == "director" else standby_configs(pair)
    allowed = re.compile(r"^[+-]\s*(router_id harbor-vip-[01]|priority (150|100)|unicast_src_ip 10\.40\.(0|64)\.10"
                         r"|10\.40\.(0|64)\.10)$")
    diff = changed_lines(first, second)
    assert diff, "the nodes must differ in priority and addresses"
    assert [line for line in diff if not allowed.match(line)] == []
    stripped = {line[0] + line[1:].strip() for line in diff}
    assert {"-priority 150", "+priority 100", "-unicast_src_ip 10.40.0.10", "+unicast_src_ip 10.40.64.10"} <= stripped


def test_vrrp_is_unicast_without_preemption_and_notifies_vip_notify(pair):
    director, _ = director_configs(pair)
    standby, _ = standby_configs(pair)
    for text in (director, standby):
        assert "state BACKUP" in text and "nopreempt" in text
        assert "unicast_peer {\n        10.40.64.10\n    }" in text
        assert f'notify_master "{pair.libexec}/vip-notify harbor-vip"' in text
        assert f"{MASTER_MARKER} dev lo scope host" in text
        assert f'notify_backup "{pair.libexec}/vip-notify harbor-vip --prepare"' in text
        assert f'notify_master_rx_lower_pri "{pair.libexec}/vip-notify harbor-vip --check"' in text
        # VRRPv3 for sub-second adverts; it has no authentication, adverts count from the peer only.
        assert "vrrp_version 3" in text and "advert_int 0.5" in text and "vrrp_check_unicast_src" in text
        assert "authentication" not in text
        assert "enable_script_security" in text and "script_user root" in text
    assert "track_script" in standby and "virtual_server" not in standby
    assert f'script "{pair.libexec}/check-harbor-health https://127.0.0.1/api/v2.0/health"' in standby


def test_director_vrrp_configuration_holds_no_pool(pair):
    """The pool is the LVS checker's (lb-pool renders it on the director): VRRP's file never changes with it."""
    for text in director_configs(pair):
        assert "virtual_server" not in text and "real_server" not in text


def test_pairs_of_different_names_use_different_router_ids():
    ids = {VrrpPair(name=f"harbor-{n}", addresses=ADDRESSES).virtual_router_id for n in range(20)}
    assert len(ids) > 15 and all(1 <= i <= 255 for i in ids)


@pytest.mark.parametrize("kwargs, prop", [
    (dict(name="bad name", addresses=ADDRESSES), "name"),
    (dict(name="vip", addresses=("10.40.0.10", "10.40.0.10")), "addresses"),
    (dict(name="vip", addresses=("10.40.0.10", "not-an-ip")), "addresses"),
    (dict(name="vip", addresses=("10.40.0.10",)), "addresses"),
])
def test_bad_pairs_are_rejected(kwargs, prop):
    with pytest.raises(ValueError, match=f"^{prop} = "):
        VrrpPair(**kwargs)


def test_lvs_nat_setup_enables_forwarding_ipvs_conntrack_and_snat_to_the_pool_set(tmp_path):
    script = lvs_nat_setup("10.40.0.10")
    assert "sysctl -qw net.ipv4.ip_forward=1" in script and "sysctl -qw net.ipv4.vs.conntrack=1" in script
    assert "sysctl -qw net.ipv4.vs.expire_quiescent_template=1" in script, "a drained server gets no new clients"
    assert "set real_servers { type ipv4_addr; }" in script
    assert "ip daddr @real_servers tcp dport { 443, 80 } snat to 10.40.0.10" in script
    path = tmp_path / "lvs-nat-setup"
    path.write_text(script)
    result = subprocess.run([require_tool("shellcheck"), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_director_runs_vrrp_and_the_lvs_checker_as_two_units():
    pair = VrrpPair(name="harbor-vip", addresses=ADDRESSES)
    config = director_cloud_config(pair, 1, "/harbor-ha/harbor-vip/lb/real-servers")
    assert set(config.packages) == {"keepalived", "ipvsadm", "nftables"}
    files = {f.path: f.content for f in config.files}
    assert files[VRRP_CONFIG_PATH] == director_configs(pair)[1]
    assert "snat to 10.40.64.10" in files[f"{LIBEXEC}/lvs-nat-setup"]
    vrrp = files["/etc/systemd/system/harbor-vrrp.service"]
    lvs = files["/etc/systemd/system/harbor-lvs.service"]
    assert f" --vrrp --use-file={VRRP_CONFIG_PATH} " in vrrp and "--check" not in vrrp
    assert " --check --use-file=/etc/keepalived/lvs.conf " in lvs and "--vrrp" not in lvs
    assert lvs.index(f"ExecStartPre={LIBEXEC}/lvs-nat-setup") < lvs.index(f"ExecStartPre={LIBEXEC}/lb-pool --no-reload")
    for unit in (vrrp, lvs):
        assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    settings = json.loads(files["/etc/harbor-ha/lb-pool.json"])
    assert settings["parameter"] == "/harbor-ha/harbor-vip/lb/real-servers" and settings["own_ip"] == "10.40.64.10"
    assert settings["pid_file"] in lvs, "lb-pool signals the checker's own process, never VRRP's"
    assert config.commands[-1] == "systemctl enable --now harbor-vrrp.service harbor-lvs.service harbor-lb-pool.timer"
    assert CONFIG_PATH not in files, "the stock keepalived.service has no configuration and stays off"


def test_programs_have_no_terraform_interpolation():
    """They travel inside Terraform strings, where a dollar-brace would be read as a reference."""
    for name in ("check-harbor-health", "vip-notify", "lvs-nat-setup", "lb-pool"):
        assert "${" not in program_text(name) and "%{" not in program_text(name), name


class HealthAnswers(QuietHandler):
    """Harbor's /api/v2.0/health answers, by path."""

    bodies = {
        "/healthy": (200, '{"status":"healthy","components":[{"name":"core","status":"healthy"}]}'),
        "/pretty": (200, '{\n  "status": "healthy",\n  "components": []\n}'),
        # Harbor answers 200 with an unhealthy overall status while some components are healthy.
        "/unhealthy": (200, '{"status":"unhealthy","components":[{"name":"core","status":"healthy"},'
                            '{"name":"database","status":"unhealthy","error":"timeout"}]}'),
        "/error": (502, '{"status":"healthy"}'),
        "/other": (200, "<html>healthy</html>"),
    }

    def do_GET(self):  # noqa: N802
        self.answer(*self.bodies[self.path])


@pytest.fixture(scope="module")
def health_url():
    with loopback_server(HealthAnswers) as url:
        yield url


@pytest.mark.parametrize("path, healthy", [
    ("/healthy", True), ("/pretty", True), ("/unhealthy", False), ("/error", False), ("/other", False)])
def test_health_check_reads_the_body(health_url, path, healthy):
    result = subprocess.run(["sh", str(TEMPLATES / "check-harbor-health.sh"), health_url + path],
                            capture_output=True, text=True, timeout=30)
    assert (result.returncode == 0) is healthy, result.stderr


def test_health_check_fails_when_nothing_answers():
    result = subprocess.run(["sh", str(TEMPLATES / "check-harbor-health.sh"), "http://127.0.0.1:9/api/v2.0/health"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0


def test_vrrp_fails_over_between_namespaces_when_harbor_turns_unhealthy(two_namespaces, tmp_path):
    """Real keepalived, unicast VRRP over a veth pair: node 0 (higher priority) becomes master and runs
    vip-notify; when its health check fails, node 1 takes over and runs vip-notify. The health check and
    vip-notify are stand-ins here (a flag file, a log line): AWS and Harbor are not part of this test."""
    keepalived = require_tool("keepalived")
    libexec = tmp_path / "libexec"
    libexec.mkdir(mode=0o755)
    tmp_path.chmod(0o755)
    log = tmp_path / "notify.log"
    stubs = {
        "check-harbor-health": f'#!/bin/sh\n[ -e "{tmp_path}/healthy-$(ip netns identify)" ]\n',
        # Only the MASTER's move is logged (--prepare and --check are the other notifications).
        "vip-notify": f'#!/bin/sh\n[ $# -eq 1 ] || exit 0\necho "$(ip netns identify) $1" >> "{log}"\n',
    }
    for name, text in stubs.items():
        (libexec / name).write_text(text)
        (libexec / name).chmod(0o755)
    processes = []
    try:
        for index, namespace in enumerate(NAMESPACES):
            (tmp_path / f"healthy-{namespace}").touch()
            pair = VrrpPair(name="harbor-vip", addresses=VETH_ADDRESSES, interface=f"hhv{index}", libexec=str(libexec))
            config = tmp_path / f"keepalived-{index}.conf"
            config.write_text(standby_configs(pair)[index])
            pids = [f"--{kind}={tmp_path}/{kind}-{index}.pid" for kind in ("pid", "vrrp_pid", "checkers_pid")]
            processes.append(subprocess.Popen(
                ["ip", "netns", "exec", namespace, keepalived, "--dont-fork", "--log-console", "--vrrp",
                 f"--use-file={config}", *pids], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            if index == 0:
                wait_for(lambda: log.exists() and log.read_text() == f"{NAMESPACES[0]} harbor-vip\n", 30,
                         "node 0 to become master")
        time.sleep(6)  # longer than node 1 waits for adverts (3 x advert_int + skew) before it claims master
        assert log.read_text() == f"{NAMESPACES[0]} harbor-vip\n", "node 1 must not take over a healthy master"
        (tmp_path / f"healthy-{NAMESPACES[0]}").unlink()
        wait_for(lambda: log.read_text().endswith(f"{NAMESPACES[1]} harbor-vip\n"), 40, "node 1 to take over")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)


def test_an_active_standby_nodes_keepalived_conf_travels_in_the_compressed_archive():
    """That node's user-data holds a whole Harbor besides (test_stacks checks the size against EC2's limit)."""
    pair = VrrpPair(name="harbor", addresses=ADDRESSES)
    user_data = standby_cloud_config(pair, 0).render()
    assert CONFIG_PATH not in {entry["path"] for entry in yaml.safe_load(user_data)["write_files"]}
    assert written_files(user_data)[CONFIG_PATH] == (standby_configs(pair)[0].encode(), 0o640)
