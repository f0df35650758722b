"""lb-pool, the directors' pool program, run for real: against the local AWS emulator (moto) for the SSM
parameter and the acknowledgement tag, the real ``nft`` for the SNAT targets, ``keepalived -t`` on what it
writes; and with real keepalived VRRP between two network namespaces, a pool change keeps the MASTER.

Stand-ins, named as such: ``FakeImds`` (conftest) for the instance metadata service, and
``CheckerStandIn`` for the checker-only keepalived (``keepalived --check`` needs IPVS, which this machine's
kernel lacks; it runs in the QEMU drill of the issue 14 branch)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from harbor_ha.keepalived import (
    LIBEXEC, TEMPLATES, VrrpPair, director_configs, lb_pool_settings, pool_document, pool_parameter_name,
    program_text,
)
from harbor_ha.node_reports import LB_POOL_TAG

from conftest import FakeImds, require_tool
from keepalived_helpers import NAMESPACES, VETH_ADDRESSES, keepalived_check, two_namespaces, wait_for  # noqa: F401

REGION = "us-east-1"
DIRECTORS = ("10.40.0.10", "10.40.64.10")
SERVERS = ["10.40.128.10", "10.40.192.10"]
PARAMETER = pool_parameter_name("harbor")


def client(service: str, endpoint: str):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def put_pool(endpoint: str, servers, draining=()) -> int:
    """Write the real-server list as Terraform's jsonencode does; returns the parameter version."""
    value = json.dumps(pool_document(servers, draining), separators=(",", ":"))
    return client("ssm", endpoint).put_parameter(Name=PARAMETER, Value=value, Type="SecureString", Overwrite=True)["Version"]


@pytest.fixture(scope="module")
def director(moto_endpoint, imds_url):
    """A director instance in the emulator, and the metadata service standing in for its own."""
    ec2 = client("ec2", moto_endpoint)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    (instance,) = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.small")["Instances"]
    FakeImds.metadata = {"instance-id": instance["InstanceId"], "placement/region": REGION}
    return instance["InstanceId"]


@pytest.fixture
def installed(tmp_path, director, moto_endpoint, imds_url):
    """lb-pool and check-harbor-health installed as user-data installs them, its settings pointed at
    ``tmp_path`` and at an nftables table of this test's own (removed afterwards)."""
    require_tool("nft")
    tmp_path.chmod(0o755)
    libexec = tmp_path / "libexec"
    libexec.mkdir(mode=0o755)
    for name in ("lb-pool", "check-harbor-health"):
        (libexec / name).write_text(program_text(name))
        (libexec / name).chmod(0o755)
    pair = VrrpPair(name="harbor", addresses=DIRECTORS, libexec=str(libexec))
    settings = lb_pool_settings(pair, 0, PARAMETER)
    table = f"harbor_lvs_test_{os.getpid()}"
    settings.update(config=str(tmp_path / "lvs.conf"), pid_file=str(tmp_path / "checker.pid"),
                    ack_file=str(tmp_path / "acknowledged"), keepalived=require_tool("keepalived"),
                    nft_table=table, imds=imds_url)
    (tmp_path / "lb-pool.json").write_text(json.dumps(settings))
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}

    def lb_pool(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(libexec / "lb-pool"), "--config", str(tmp_path / "lb-pool.json"),
                               *args], capture_output=True, text=True, env=env, timeout=60)

    try:
        yield lb_pool, settings
    finally:
        subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True)


def snat_targets(settings) -> list[str]:
    listing = json.loads(subprocess.run(["nft", "-j", "list", "set", "ip", settings["nft_table"], "real_servers"],
                                        capture_output=True, text=True, check=True).stdout)
    (found,) = [item["set"] for item in listing["nftables"] if "set" in item]
    return sorted(found.get("elem", []))


def ack(moto_endpoint: str, instance: str) -> str | None:
    tags = client("ec2", moto_endpoint).describe_tags(
        Filters=[{"Name": "resource-id", "Values": [instance]}, {"Name": "key", "Values": [LB_POOL_TAG]}])["Tags"]
    return tags[0]["Value"] if tags else None


def test_lb_pool_renders_the_parameter_into_a_configuration_keepalived_accepts(installed, moto_endpoint, director,
                                                                                tmp_path):
    lb_pool, settings = installed
    version = put_pool(moto_endpoint, SERVERS + ["10.40.128.11"], draining=["10.40.128.11"])
    result = lb_pool("--no-reload")
    assert result.returncode == 0, result.stdout + result.stderr
    text = Path(settings["config"]).read_text()
    assert keepalived_check(text, tmp_path).returncode == 0, text
    for port in (443, 80):
        block = text.split(f"virtual_server 10.40.0.10 {port} {{")[1].split("\nvirtual_server")[0]
        assert "lb_kind NAT" in block and "lb_algo wlc" in block and "persistence_timeout 300" in block
        assert "alpha" in block, "a new server must stay out of IPVS until its health body says healthy"
        for server in SERVERS:
            assert f"real_server {server} {port} {{\n        weight 1\n" in block
            assert f'check-harbor-health https://{server}/api/v2.0/health"' in block
        assert f"real_server 10.40.128.11 {port} {{\n        weight 0\n" in block, "draining: quiesced"
    assert "HTTP_GET" not in text and "SSL_GET" not in text, "status codes cannot judge Harbor's health"
    assert snat_targets(settings) == sorted(SERVERS + ["10.40.128.11"]), "drained servers keep their SNAT"
    assert ack(moto_endpoint, director) == str(version)


class CheckerStandIn:
    """Stands in for the checker-only keepalived (``keepalived --check``), which cannot run without IPVS:
    a process whose pid is in the checker's pid file and which counts the SIGHUPs (reloads) it gets."""

    SCRIPT = ("import signal, sys, time\ncount = 0\ndef hup(*_):\n    global count\n    count += 1\n"
              "    open(sys.argv[1], 'w').write(str(count))\nsignal.signal(signal.SIGHUP, hup)\n"
              "open(sys.argv[1], 'w').write('0')\nwhile True:\n    time.sleep(1)\n")

    def __init__(self, pid_file: Path, directory: Path) -> None:
        self.counter = directory / "reloads"
        self.process = subprocess.Popen([sys.executable, "-c", self.SCRIPT, str(self.counter)])
        wait_for(self.counter.exists, 10, "the checker stand-in to start")
        pid_file.write_text(f"{self.process.pid}\n")

    @property
    def reloads(self) -> int:
        return int(self.counter.read_text() or 0)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def test_a_pool_change_reloads_the_checker_once_and_an_unchanged_pool_nothing(installed, moto_endpoint, director,
                                                                              tmp_path):
    lb_pool, settings = installed
    put_pool(moto_endpoint, SERVERS)
    assert lb_pool("--no-reload").returncode == 0
    checker = CheckerStandIn(Path(settings["pid_file"]), tmp_path)
    try:
        before = Path(settings["config"]).stat().st_mtime_ns
        assert lb_pool().returncode == 0
        assert checker.reloads == 0 and Path(settings["config"]).stat().st_mtime_ns == before, "nothing changed"
        version = put_pool(moto_endpoint, SERVERS + ["10.40.128.11"])
        result = lb_pool()
        assert result.returncode == 0, result.stdout + result.stderr
        wait_for(lambda: checker.reloads == 1, 10, "the checker to be told to reload")
        assert "real_server 10.40.128.11 443" in Path(settings["config"]).read_text()
        assert "checker reloaded" in result.stdout
        assert snat_targets(settings) == sorted(SERVERS + ["10.40.128.11"])
        assert ack(moto_endpoint, director) == str(version)
        put_pool(moto_endpoint, SERVERS)
        assert lb_pool().returncode == 0
        wait_for(lambda: checker.reloads == 2, 10, "the second reload")
        assert "10.40.128.11" not in Path(settings["config"]).read_text()
        assert snat_targets(settings) == sorted(SERVERS), "a removed server leaves the SNAT targets"
    finally:
        checker.stop()


@pytest.mark.parametrize("value", ['{"servers": []}', '{"servers": [{"address": "harbor.example.com", "weight": 1}]}',
                                   '{"servers": [{"address": "10.0.0.1", "weight": 1}, {"address": "10.0.0.1", '
                                   '"weight": 1}]}', '{"servers": [{"address": "10.0.0.1", "weight": 7}]}', "10.0.0.1"])
def test_a_bad_list_changes_nothing(installed, moto_endpoint, value):
    lb_pool, settings = installed
    put_pool(moto_endpoint, SERVERS)
    assert lb_pool("--no-reload").returncode == 0
    before = Path(settings["config"]).read_text()
    client("ssm", moto_endpoint).put_parameter(Name=PARAMETER, Value=value, Type="SecureString", Overwrite=True)
    result = lb_pool()
    assert result.returncode == 1 and "real-server list" in result.stdout, result.stdout
    assert Path(settings["config"]).read_text() == before


def test_at_boot_without_aws_the_installed_pool_is_served(installed, moto_endpoint, tmp_path):
    lb_pool, settings = installed
    put_pool(moto_endpoint, SERVERS)
    assert lb_pool("--no-reload").returncode == 0
    subprocess.run(["nft", "delete", "table", "ip", settings["nft_table"]], check=True)  # what a reboot does
    settings["parameter"] = "/harbor-ha/missing/lb/real-servers"
    (tmp_path / "lb-pool.json").write_text(json.dumps(settings))
    result = lb_pool("--no-reload")
    assert result.returncode == 0 and "starting with the installed pool" in result.stdout, result.stdout
    assert snat_targets(settings) == sorted(SERVERS)
    assert lb_pool().returncode == 1, "a timer run must say that it could not read the pool"


def test_lb_pool_is_python_3_9_and_carries_no_terraform_interpolation():
    """Amazon Linux 2023 has Python 3.9: no syntax newer than that (ast checks with feature_version)."""
    import ast

    text = (TEMPLATES / "lb-pool.py").read_text()
    ast.parse(text, feature_version=(3, 9))
    assert text.startswith("#!/usr/bin/python3\n") and "${" not in text


def ip_netns(namespace: str, *args: str) -> str:
    return subprocess.run(["ip", "-n", namespace, *args], capture_output=True, text=True, check=True).stdout


def moves(log: Path) -> list[str]:
    """The vip-notify runs that move the VIP (notify_master); --prepare (a BACKUP looking the VIP up) and
    --check (a MASTER that already holds it) leave it where it is."""
    return [line for line in log.read_text().splitlines() if not line.endswith(("--prepare", "--check"))]


def test_a_pool_change_keeps_the_vrrp_master(two_namespaces, installed, moto_endpoint, tmp_path):  # noqa: F811
    """Real keepalived: the directors' VRRP process (``keepalived --vrrp`` with the directors' vrrp.conf) in
    two namespaces. Node 0 becomes MASTER; then lb-pool applies two pool changes on node 0 (its checker is
    the stand-in above). Node 0 stays MASTER throughout: its VRRP process is neither signalled nor restarted,
    it keeps the master marker address, and vip-notify (a log line here) never runs again."""
    lb_pool, settings = installed
    keepalived = require_tool("keepalived")
    libexec = Path(settings["health_program"]).parent
    log = tmp_path / "notify.log"
    (libexec / "vip-notify").write_text(f'#!/bin/sh\necho "$(ip netns identify) $*" >> "{log}"\n')
    (libexec / "vip-notify").chmod(0o755)
    processes = []
    checker = None
    try:
        for index, namespace in enumerate(NAMESPACES):
            pair = VrrpPair(name="harbor", addresses=VETH_ADDRESSES, interface=f"hhv{index}", libexec=str(libexec))
            config = tmp_path / f"vrrp-{index}.conf"
            config.write_text(director_configs(pair)[index])
            pids = [f"--{kind}={tmp_path}/vrrp-{kind}-{index}.pid" for kind in ("pid", "vrrp_pid")]
            processes.append(subprocess.Popen(
                ["ip", "netns", "exec", namespace, keepalived, "--dont-fork", "--log-console", "--vrrp",
                 f"--use-file={config}", *pids], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            if index == 0:
                wait_for(lambda: log.exists() and moves(log) == [f"{NAMESPACES[0]} harbor"], 30,
                         "director 0 to become master")
        time.sleep(5)  # node 1 has heard node 0's adverts and settled as BACKUP
        put_pool(moto_endpoint, SERVERS)
        assert lb_pool("--no-reload").returncode == 0
        checker = CheckerStandIn(Path(settings["pid_file"]), tmp_path)
        for step, servers in enumerate((SERVERS + ["10.40.128.11"], SERVERS), start=1):
            put_pool(moto_endpoint, servers)
            result = lb_pool()
            assert result.returncode == 0, result.stdout + result.stderr
            wait_for(lambda: checker.reloads == step, 10, f"pool change {step} to reach the checker")
            time.sleep(4)  # longer than a BACKUP waits for adverts (3 x advert_int + skew)
            assert "169.254.100.1" in ip_netns(NAMESPACES[0], "addr", "show", "lo"), "node 0 left MASTER"
            assert "169.254.100.1" not in ip_netns(NAMESPACES[1], "addr", "show", "lo"), "node 1 took over"
        assert moves(log) == [f"{NAMESPACES[0]} harbor"], f"vip-notify moved the VIP again: {log.read_text()}"
        assert all(process.poll() is None for process in processes), "a VRRP process was restarted or died"
    finally:
        if checker:
            checker.stop()
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=20)
