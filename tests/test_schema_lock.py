"""The schema-migration lock of nodes that share one database (start-harbor.sh), run for real with bash against
the moto server: two nodes boot their start step at once; exactly one starts Harbor while holding the lock, the
other starts only once the lock says done. A lock held by a live node bounds the wait, a failed one stops the
wait, a dead holder's lock is taken over.

Stand-ins, each named for what it replaces:
- ``ImdsStandIn`` per node for the instance metadata service (the node's instance id);
- ``systemctl`` (a script first on PATH) for systemd: it records each call with the time and, when Harbor is
  started, what the lock parameter said at that moment (read from the emulator), and marks Harbor started;
- the health check (``HARBOR_HA_HEALTH_CHECK``) for check-harbor-health against the node's Harbor: healthy once
  Harbor has been started for ``MIGRATION_S`` seconds, the time its core takes to migrate the schema.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from harbor_ha.drill.standins import ImdsStandIn
from harbor_ha.harbor_boot import schema_lock_parameter, script_path
from conftest import loopback_server, require_tool

REGION = "us-east-1"
MIGRATION_S = 3
VERSION = "2.15.2"
SYSTEMCTL_STAND_IN = """#!/bin/bash
# Stands in for systemd's systemctl: records the call; starting harbor.service records what the lock said.
echo "$(date +%s.%N) $*" >>"$NODE_DIR/systemctl-calls"
case " $* " in
  *" restart "*harbor.service*)
    aws ssm get-parameter --name "$SCHEMA_LOCK_PARAMETER" --query Parameter.Value --output text \
      >"$NODE_DIR/lock-at-start"
    date +%s.%N >"$NODE_DIR/harbor-started" ;;
  *" stop "*harbor.service*) rm -f "$NODE_DIR/harbor-started" ;;
esac
"""
HEALTH_CHECK_STAND_IN = f"""#!/bin/bash
# Stands in for check-harbor-health against this node's Harbor: healthy {MIGRATION_S} s after Harbor started.
[ -s "$NODE_DIR/harbor-started" ] || exit 1
started=$(<"$NODE_DIR/harbor-started")
python3 -c 'import sys, time; sys.exit(time.time() - float(sys.argv[1]) < {MIGRATION_S})' "$started" || exit 1
[ -s "$NODE_DIR/healthy-at" ] || date +%s.%N >"$NODE_DIR/healthy-at"
"""


@dataclass
class Node:
    instance_id: str
    directory: Path

    def read(self, name: str) -> str:
        path = self.directory / name
        return path.read_text().strip() if path.exists() else ""

    def calls(self) -> list[str]:
        return [line.split(" ", 1)[1] for line in self.read("systemctl-calls").splitlines()]


@pytest.fixture
def ssm(moto_endpoint):
    return boto3.client("ssm", region_name=REGION, endpoint_url=moto_endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture
def lock(request) -> str:
    """A lock parameter of its own per test (the module shares one emulator)."""
    return schema_lock_parameter("harbor-aa", f"db-{request.node.name.replace('_', '')[-20:].upper()}", VERSION)


@contextlib.contextmanager
def started(nodes: list[Node], moto_endpoint: str, lock: str, **settings: str):
    """Each node's start-harbor.sh running, all at once; yields the processes."""
    require_tool("curl")
    with contextlib.ExitStack() as stack:
        processes = []
        for node in nodes:
            imds = stack.enter_context(loopback_server(ImdsStandIn.for_instance(node.instance_id, REGION)))
            bin_dir = node.directory / "bin"
            bin_dir.mkdir(parents=True)
            for name, text in (("systemctl", SYSTEMCTL_STAND_IN), ("health-check", HEALTH_CHECK_STAND_IN)):
                (bin_dir / name).write_text(text)
                (bin_dir / name).chmod(0o755)
            env = {"PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": str(node.directory),
                   "NODE_DIR": str(node.directory), "AWS_ENDPOINT_URL": moto_endpoint,
                   "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "HARBOR_HA_IMDS_ENDPOINT": imds, "HARBOR_HA_HEALTH_CHECK": str(bin_dir / "health-check"),
                   "HARBOR_VERSION": VERSION, "SCHEMA_LOCK_PARAMETER": lock, "HARBOR_HA_SCHEMA_LOCK_POLL": "1",
                   **settings}
            processes.append(subprocess.Popen(["bash", str(script_path("start-harbor.sh"))], env=env, text=True,
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        try:
            yield processes
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                process.communicate()


def finish(processes) -> list[tuple[int, str]]:
    return [(process.wait(timeout=120), process.communicate()[1]) for process in processes]


def nodes(tmp_path, *instance_ids: str) -> list[Node]:
    return [Node(instance_id, tmp_path / instance_id) for instance_id in instance_ids]


def test_one_node_migrates_and_the_other_starts_only_after_done(tmp_path, moto_endpoint, ssm, lock):
    a, b = nodes(tmp_path, "i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2")
    with started([a, b], moto_endpoint, lock) as processes:
        results = finish(processes)
    assert [code for code, _ in results] == [0, 0], results
    migrating = [node for node, (_, log) in zip((a, b), results) if "migrates the database schema" in log]
    assert len(migrating) == 1, results
    (winner,) = migrating
    (other,) = [node for node in (a, b) if node is not winner]
    assert winner.calls() == ["restart --no-block harbor.service"]
    assert winner.read("lock-at-start").startswith(f"migrating {winner.instance_id} ")
    assert other.calls() == ["restart harbor.service"], "the other node started Harbor once, after waiting"
    assert other.read("lock-at-start").startswith(f"done {winner.instance_id} "), \
        "the other node started Harbor's core only once the lock said done"
    assert float(other.read("harbor-started")) >= float(winner.read("healthy-at")) >= \
        float(winner.read("harbor-started")) + MIGRATION_S - 0.5
    assert ssm.get_parameter(Name=lock)["Parameter"]["Value"].startswith(f"done {winner.instance_id} ")


def test_a_node_after_done_starts_at_once(tmp_path, moto_endpoint, ssm, lock):
    """Scale-out after an upgrade: the release's migration is done, a new node starts without waiting."""
    ssm.put_parameter(Name=lock, Type="String", Value="done i-0ccccccccccccccc3 2026-12-01T10:00:00Z")
    (node,) = nodes(tmp_path, "i-0ddddddddddddddd4")
    with started([node], moto_endpoint, lock) as processes:
        ((code, log),) = finish(processes)
    assert code == 0, log
    assert node.calls() == ["restart harbor.service"]
    assert "i-0ccccccccccccccc3 migrated the schema" in log


def test_a_live_holder_bounds_the_wait_with_one_clear_line(tmp_path, moto_endpoint, ssm, lock):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ssm.put_parameter(Name=lock, Type="String", Value=f"migrating i-0eeeeeeeeeeeeeee5 {now}")
    (node,) = nodes(tmp_path, "i-0fffffffffffffff6")
    with started([node], moto_endpoint, lock, HARBOR_HA_SCHEMA_LOCK_WAIT="3") as processes:
        ((code, log),) = finish(processes)
    assert code == 1
    assert node.calls() == [], "Harbor is not started while another node migrates"
    last = log.strip().splitlines()[-1]
    assert last.startswith("harbor-ha schema lock: waited 3s for i-0eeeeeeeeeeeeeee5 to migrate the schema to "
                           f"Harbor {VERSION} ({lock}: migrating"), log
    assert "systemctl restart harbor.service" in last and "taken over" in last


def test_a_failed_migration_stops_the_waiting_nodes(tmp_path, moto_endpoint, ssm, lock):
    ssm.put_parameter(Name=lock, Type="String", Value="failed i-0eeeeeeeeeeeeeee5 2026-12-01T10:00:00Z")
    (node,) = nodes(tmp_path, "i-0fffffffffffffff7")
    with started([node], moto_endpoint, lock) as processes:
        ((code, log),) = finish(processes)
    assert (code, node.calls()) == (1, [])
    assert f"aws ssm delete-parameter --name {lock}" in log.strip().splitlines()[-1]


def test_a_dead_holders_lock_is_taken_over_by_one_node(tmp_path, moto_endpoint, ssm, lock):
    """A holder whose heartbeat is older than the stale limit died: one of two waiting nodes takes over."""
    ssm.put_parameter(Name=lock, Type="String", Value="migrating i-0deaddeaddeaddead 2026-12-01T00:00:00Z")
    a, b = nodes(tmp_path, "i-0aaaaaaaaaaaaaaa8", "i-0bbbbbbbbbbbbbbb9")
    with started([a, b], moto_endpoint, lock, HARBOR_HA_SCHEMA_LOCK_STALE="60") as processes:
        results = finish(processes)
    assert [code for code, _ in results] == [0, 0], results
    took_over = [node for node, (_, log) in zip((a, b), results) if "taking " in log]
    assert len(took_over) == 1, results
    assert ssm.get_parameter(Name=lock)["Parameter"]["Value"].startswith(f"done {took_over[0].instance_id} ")
    assert ssm.get_parameter(Name=f"{lock}.takeover-1")["Parameter"]["Value"].startswith(took_over[0].instance_id)


def test_a_winner_whose_harbor_never_gets_healthy_marks_the_lock_failed(tmp_path, moto_endpoint, ssm, lock):
    (node,) = nodes(tmp_path, "i-0aaaaaaaaaaaaaa10")
    with started([node], moto_endpoint, lock, HARBOR_HA_SCHEMA_LOCK_WAIT="2",
                 HARBOR_HA_HEALTH_CHECK="/bin/false") as processes:
        ((code, log),) = finish(processes)
    assert code == 1
    assert ssm.get_parameter(Name=lock)["Parameter"]["Value"].startswith(f"failed {node.instance_id} ")
    assert "did not report healthy within 2s" in log.strip().splitlines()[-1]
