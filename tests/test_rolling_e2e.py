"""Day 2 on the local AWS target, through ``harbor_ha.rolling.up`` (what ``harbor-ha up`` runs): active-active
scaled 2 -> 3 -> 2 without touching the load balancers, a Harbor upgrade rolled one node at a time after an
RDS snapshot, a downgrade refused before anything changes, and a node that never reports healthy stopping
the roll. Each test has its own emulator and deployment, so they can run in parallel.

VMs do not boot on the local target: ``NodeReportsStandIn`` plays what the nodes' timers would write (the
Harbor nodes' ``harbor-ha:health`` tag, the directors' ``harbor-ha:lb-pool`` acknowledgement)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from harbor_ha.changes import ChangeRefused
from harbor_ha.stack_run import StackRun
from harbor_ha.keepalived import pool_parameter_name
from harbor_ha.node_reports import HEALTH_TAG, LB_POOL_TAG, HealthReport
from harbor_ha.rolling import RollOptions, RollStopped, up
from harbor_ha.settings import HarborHaSettings

from e2e_helpers import client, emulated_project, use_project

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

STACK = "active-active"
PREFIX = HarborHaSettings(stacks=(STACK,)).resource_prefix  # harbor-aa: the start of every name of the stack
FAST = RollOptions(health_timeout=60, ack_timeout=30, drain_seconds=0, poll_seconds=0.5, wait_for_reports=True)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project directory with its own emulator."""
    with emulated_project(tmp_path) as project:
        use_project(monkeypatch, project)
        yield project


class NodeReportsStandIn:
    """Stands in for the nodes' own report timers, which do not run on the local target: every 0.3 s it tags
    each running Harbor server ``harbor-ha:health = <status> <release> <now>`` (health-report) and each
    director ``harbor-ha:lb-pool = <pool parameter version>`` (lb-pool). ``healthy_ids`` limits the
    healthy reports to those instances (others report ``unhealthy``), to play a node that never recovers."""

    def __init__(self, endpoint: str, release: str, name: str = PREFIX) -> None:
        self.ec2, self.ssm = client(endpoint, "ec2"), client(endpoint, "ssm")
        self.release = release
        self.parameter = pool_parameter_name(name)
        self.healthy_ids: set[str] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)

    def _running(self, role: str) -> list[str]:
        found = self.ec2.describe_instances(Filters=[{"Name": "tag:harbor-ha:role", "Values": [role]},
                                                     {"Name": "instance-state-name", "Values": ["running"]}])
        return [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]

    def _loop(self) -> None:
        while not self._stop.wait(0.3):
            now = dt.datetime.now(dt.timezone.utc)
            for instance in self._running("harbor"):
                status = "healthy" if self.healthy_ids is None or instance in self.healthy_ids else "unhealthy"
                report = HealthReport(status, self.release, now)
                self.ec2.create_tags(Resources=[instance], Tags=[{"Key": HEALTH_TAG, "Value": report.value()}])
            try:
                version = self.ssm.get_parameter(Name=self.parameter)["Parameter"]["Version"]
            except self.ssm.exceptions.ParameterNotFound:
                continue
            for director in self._running("lb"):
                self.ec2.create_tags(Resources=[director], Tags=[{"Key": LB_POOL_TAG, "Value": str(version)}])


def instances(endpoint: str, role: str) -> dict[str, str]:
    """Name -> instance id of the running instances of ``role``."""
    found = client(endpoint, "ec2").describe_instances(Filters=[
        {"Name": "tag:harbor-ha:role", "Values": [role]}, {"Name": "instance-state-name", "Values": ["running"]}])
    return {next(t["Value"] for t in i["Tags"] if t["Key"] == "Name"): i["InstanceId"]
            for r in found["Reservations"] for i in r["Instances"]}


def roll_steps(lines: list[str]) -> list[str]:
    """The ``rolling <member> ...`` lines of an up's output, without the plan's heading (``rolling change: ...``)."""
    return [line for line in lines if line.startswith("rolling ") and not line.startswith("rolling change:")]


def run_for(root, **settings) -> StackRun:
    return StackRun(STACK, HarborHaSettings(stacks=(STACK,), **settings), project_dir=root, stream=False)


def plan_is_empty(run: StackRun) -> bool:
    code, _ = run.terraform("plan", ok=(0, 2), stream=False)
    return code == 0


def test_scale_out_and_in_leaves_the_load_balancers_alone(project):
    root, endpoint = project
    lines: list[str] = []
    with NodeReportsStandIn(endpoint, "2.15.2"):
        up(run_for(root), FAST, lines.append)
        directors = instances(endpoint, "lb")
        assert len(directors) == 2 and len(instances(endpoint, "harbor")) == 2
        ssm = client(endpoint, "ssm")
        for count in (3, 2):
            lines.clear()
            run = run_for(root, harbor_count=count)
            up(run, FAST, lines.append)
            assert instances(endpoint, "lb") == directors, f"count {count}: a director was replaced"
            assert not [line for line in lines if "(lb)" in line], f"count {count}: a director was rolled: {lines}"
            servers = ssm.get_parameter(Name=pool_parameter_name(PREFIX), WithDecryption=True)["Parameter"]["Value"]
            assert servers.count('"address"') == count and '"weight":0' not in servers, servers
            assert len(instances(endpoint, "harbor")) == count
            assert plan_is_empty(run), f"count {count}: a plan right after up wants changes"
        # Scale in drained the leaving server before destroying it.
        assert any(line.startswith(f"draining {PREFIX}-harbor-2") for line in lines), lines
        assert lines.index(next(l for l in lines if l.startswith("draining"))) < lines.index("settling the rest")


def test_upgrade_rolls_one_node_at_a_time_after_a_snapshot_and_a_downgrade_is_refused(project):
    root, endpoint = project
    lines: list[str] = []
    with NodeReportsStandIn(endpoint, "2.15.1") as reports:
        up(run_for(root, harbor_version="2.15.1"), FAST, lines.append)
        before = instances(endpoint, "harbor")
        directors = instances(endpoint, "lb")
        lines.clear()
        reports.release = "2.15.2"
        run = run_for(root, harbor_version="2.15.2")
        up(run, FAST, lines.append)
    after = instances(endpoint, "harbor")
    assert set(after) == set(before) and not set(after.values()) & set(before.values()), "every server replaced"
    assert instances(endpoint, "lb") == directors
    snapshots = client(endpoint, "rds").describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    (snapshot,) = [s["DBSnapshotIdentifier"] for s in snapshots]
    assert snapshot.startswith(f"{PREFIX}-harbor-2-15-1-to-2-15-2-")
    steps = [line for line in lines
             if line.startswith(("RDS snapshot", f"{PREFIX}-harbor-")) or line in roll_steps(lines)]
    assert steps[0].startswith("RDS snapshot"), steps
    assert [s.split()[1] for s in steps if s.startswith("rolling")] == [f"{PREFIX}-harbor-0", f"{PREFIX}-harbor-1"]
    # One at a time: the second server is replaced only after the first reported healthy at 2.15.2.
    assert steps[1:] == [f"rolling {PREFIX}-harbor-0 (harbor) replaced", f"{PREFIX}-harbor-0 reports healthy at 2.15.2",
                         f"rolling {PREFIX}-harbor-1 (harbor) replaced", f"{PREFIX}-harbor-1 reports healthy at 2.15.2"]
    assert plan_is_empty(run)

    with pytest.raises(ChangeRefused, match=r'^harbor_version = "2.14.4" \(deployed: "2.15.2"\): refused'):
        up(run_for(root, harbor_version="2.14.4"), FAST, lines.append)
    assert instances(endpoint, "harbor") == after, "a refused change changes nothing"


def test_instance_types_roll_one_node_at_a_time_and_the_vip_holder_last(project):
    root, endpoint = project
    lines: list[str] = []
    with NodeReportsStandIn(endpoint, "2.15.2"):
        up(run_for(root), FAST, lines.append)
        directors = instances(endpoint, "lb")
        vip = client(endpoint, "ec2").describe_addresses(
            Filters=[{"Name": "tag:harbor-ha:vip", "Values": [PREFIX]}])["Addresses"][0]
        assert vip["InstanceId"] == directors[f"{PREFIX}-lb-0"]
        lines.clear()
        run = run_for(root, harbor_instance_type="m6i.xlarge", lb_instance_type="t3.medium")
        up(run, FAST, lines.append)
    rolled = [line.split()[1] for line in roll_steps(lines)]
    assert rolled == [f"{PREFIX}-harbor-0", f"{PREFIX}-harbor-1", f"{PREFIX}-lb-1", f"{PREFIX}-lb-0"], lines
    moved = next(i for i, line in enumerate(lines) if line.startswith("moved the VIP"))
    assert lines.index(f"rolling {PREFIX}-lb-1 (lb) stopped, changed and started") < moved < lines.index(
        f"rolling {PREFIX}-lb-0 (lb) stopped, changed and started"), "BACKUP first, then the VIP, then the old MASTER"
    assert instances(endpoint, "lb") == directors, "resized in place, not replaced"
    types = {i["InstanceId"]: i["InstanceType"] for r in client(endpoint, "ec2").describe_instances()["Reservations"]
             for i in r["Instances"]}
    assert {types[i] for i in directors.values()} == {"t3.medium"}
    assert {types[i] for i in instances(endpoint, "harbor").values()} == {"m6i.xlarge"}
    assert plan_is_empty(run), "the VIP on the other director leaves Terraform nothing to do"


def test_a_new_image_replaces_one_node_at_a_time_and_the_vip_holder_last(project):
    """ami_id set on a deployed active-active: every Harbor server and director is replaced with that image,
    one at a time, the directors BACKUP first; the plan afterwards is empty."""
    root, endpoint = project
    lines: list[str] = []
    ec2 = client(endpoint, "ec2")

    def images() -> dict[str, str]:
        return {i["InstanceId"]: i["ImageId"] for r in ec2.describe_instances(Filters=[
            {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"] for i in r["Instances"]}

    with NodeReportsStandIn(endpoint, "2.15.2"):
        up(run_for(root), FAST, lines.append)
        before = {**instances(endpoint, "harbor"), **instances(endpoint, "lb")}
        # Any image the emulator has registered, other than the one the AL2023 parameter gave the VMs.
        image = next(i["ImageId"] for i in ec2.describe_images()["Images"]
                     if i["ImageId"] not in set(images().values()) and len(i["ImageId"]) in (12, 21))
        lines.clear()
        run = run_for(root, ami_id=image)
        up(run, FAST, lines.append)
    assert roll_steps(lines) == [f"rolling {PREFIX}-harbor-0 (harbor) replaced", f"rolling {PREFIX}-harbor-1 (harbor) replaced",
                                 f"rolling {PREFIX}-lb-1 (lb) replaced", f"rolling {PREFIX}-lb-0 (lb) replaced"], lines
    moved = next(i for i, line in enumerate(lines) if line.startswith("moved the VIP"))
    assert lines.index(f"rolling {PREFIX}-lb-1 (lb) replaced") < moved < lines.index(f"rolling {PREFIX}-lb-0 (lb) replaced")
    after = {**instances(endpoint, "harbor"), **instances(endpoint, "lb")}
    assert set(after) == set(before) and not set(after.values()) & set(before.values()), "every VM replaced"
    assert {images()[i] for i in after.values()} == {image}
    assert plan_is_empty(run)


def test_a_node_that_never_reports_healthy_stops_the_roll(project):
    root, endpoint = project
    with NodeReportsStandIn(endpoint, "2.15.1") as reports:
        up(run_for(root, harbor_version="2.15.1"), FAST, print)
        before = instances(endpoint, "harbor")
        reports.release = "2.15.2"
        reports.healthy_ids = set()  # the new release never comes up healthy
        with pytest.raises(RollStopped) as stopped:
            up(run_for(root, harbor_version="2.15.2"), FAST, print)
    message = str(stopped.value)
    assert f"{PREFIX}-harbor-0 to report healthy at 2.15.2" in message
    assert f"Not yet changed: {PREFIX}-harbor-1" in message
    assert "run harbor-ha up again" in message and "restoring the RDS snapshot" in message
    now = instances(endpoint, "harbor")
    assert now[f"{PREFIX}-harbor-1"] == before[f"{PREFIX}-harbor-1"], "the rest stays on the old release"
    assert now[f"{PREFIX}-harbor-0"] != before[f"{PREFIX}-harbor-0"]
