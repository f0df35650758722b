"""Day 2 on the local AWS target, through ``harbor_ha.rolling.up`` (what ``harbor-ha up`` runs), on
active-active deployments changed as an operator would over their life: scaled 2 -> 3 -> 2 without touching the
load balancers, instance types and then a new image rolled one node at a time with the VIP holder last, an
upgrade whose new release never reports healthy stopping the roll, the next upgrade rolled one node at a time
after an RDS snapshot, and a downgrade refused before anything changes. Two deployments, each changed in turn
(an apply of a new active-active costs minutes of CI, and a change to a stack that has lived through others is
the case that matters): one is resized and re-imaged, the other upgraded; they run side by side in CI.

VMs do not boot on the local target: ``NodeReportsStandIn`` plays what the nodes' timers would write (the
Harbor nodes' ``harbor-ha:health`` tag, the directors' ``harbor-ha:lb-pool`` acknowledgement)."""

from __future__ import annotations

import contextlib
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

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

STACK = "active-active"
PREFIX = HarborHaSettings(stacks=(STACK,)).resource_prefix  # harbor-aa: the start of every name of the stack
FAST = RollOptions(health_timeout=60, ack_timeout=30, drain_seconds=0, poll_seconds=0.5, wait_for_reports=True)


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


class Deployment:
    """The one deployment the day-2 steps change in turn: its settings so far, and what each up said."""

    def __init__(self, root, endpoint: str, reports: NodeReportsStandIn) -> None:
        self.root, self.endpoint, self.reports = root, endpoint, reports
        self.settings: dict = {}
        self.lines: list[str] = []

    def up(self, **changed) -> StackRun:
        """``harbor-ha up`` with ``changed`` on top of every earlier step's settings."""
        self.settings.update(changed)
        self.lines.clear()
        run = run_for(self.root, **self.settings)
        up(run, FAST, self.lines.append)
        return run

    def directors_by_role(self) -> tuple[str, str]:
        """(the director without the VIP, the one holding it): the order a roll must take them in."""
        directors = instances(self.endpoint, "lb")
        holder = client(self.endpoint, "ec2").describe_addresses(
            Filters=[{"Name": "tag:harbor-ha:vip", "Values": [PREFIX]}])["Addresses"][0]["InstanceId"]
        (backup,) = [name for name, instance in directors.items() if instance != holder]
        (master,) = [name for name, instance in directors.items() if instance == holder]
        return backup, master

    def rolled_vip_holder_last(self, backup: str, master: str, verb: str) -> None:
        lines = self.lines
        assert [line.split()[1] for line in roll_steps(lines)] == [
            f"{PREFIX}-harbor-0", f"{PREFIX}-harbor-1", backup, master], lines
        moved = next(i for i, line in enumerate(lines) if line.startswith("moved the VIP"))
        assert lines.index(f"rolling {backup} (lb) {verb}") < moved < lines.index(f"rolling {master} (lb) {verb}"), \
            "BACKUP first, then the VIP, then the old MASTER"


@contextlib.contextmanager
def a_deployment(tmp_path, monkeypatch):
    """An active-active deployment at Harbor 2.15.0 on an emulator of its own, the nodes' reports played."""
    with emulated_project(tmp_path) as (root, endpoint):
        use_project(monkeypatch, (root, endpoint))
        with NodeReportsStandIn(endpoint, "2.15.0") as reports:
            deployment = Deployment(root, endpoint, reports)
            deployment.up(harbor_version="2.15.0")
            yield deployment


def test_scale_instance_types_and_a_new_image_roll_one_node_at_a_time(tmp_path, monkeypatch):
    with a_deployment(tmp_path, monkeypatch) as deployment:
        scale_out_and_in_leaves_the_load_balancers_alone(deployment)
        instance_types_roll_in_place_and_the_vip_holder_last(deployment)
        a_new_image_replaces_every_vm_and_the_vip_holder_last(deployment)


# Allowed less than the resize (it takes about two thirds of its time), so that it starts after the interrupt and
# recovery e2es (tests/conftest.py orders the long tests by what they are allowed).
@pytest.mark.timeout(1800)
def test_upgrades_roll_one_node_at_a_time_stop_on_an_unhealthy_node_and_refuse_downgrades(tmp_path, monkeypatch):
    with a_deployment(tmp_path, monkeypatch) as deployment:
        a_node_that_never_reports_healthy_stops_the_roll(deployment)
        an_upgrade_rolls_one_node_at_a_time_after_a_snapshot_and_a_downgrade_is_refused(deployment)


def scale_out_and_in_leaves_the_load_balancers_alone(deployment: Deployment) -> None:
    endpoint, lines = deployment.endpoint, deployment.lines
    directors = instances(endpoint, "lb")
    assert len(directors) == 2 and len(instances(endpoint, "harbor")) == 2
    ssm = client(endpoint, "ssm")
    for count in (3, 2):
        run = deployment.up(harbor_count=count)
        assert instances(endpoint, "lb") == directors, f"count {count}: a director was replaced"
        assert not [line for line in lines if "(lb)" in line], f"count {count}: a director was rolled: {lines}"
        servers = ssm.get_parameter(Name=pool_parameter_name(PREFIX), WithDecryption=True)["Parameter"]["Value"]
        assert servers.count('"address"') == count and '"weight":0' not in servers, servers
        assert len(instances(endpoint, "harbor")) == count
        assert plan_is_empty(run), f"count {count}: a plan right after up wants changes"
    # Scale in drained the leaving server before destroying it.
    assert any(line.startswith(f"draining {PREFIX}-harbor-2") for line in lines), lines
    assert lines.index(next(l for l in lines if l.startswith("draining"))) < lines.index("settling the rest")


def instance_types_roll_in_place_and_the_vip_holder_last(deployment: Deployment) -> None:
    endpoint = deployment.endpoint
    directors = instances(endpoint, "lb")
    backup, master = deployment.directors_by_role()
    run = deployment.up(harbor_instance_type="m6i.xlarge", lb_instance_type="t3.medium")
    deployment.rolled_vip_holder_last(backup, master, "stopped, changed and started")
    assert instances(endpoint, "lb") == directors, "resized in place, not replaced"
    types = {i["InstanceId"]: i["InstanceType"] for r in client(endpoint, "ec2").describe_instances()["Reservations"]
             for i in r["Instances"]}
    assert {types[i] for i in directors.values()} == {"t3.medium"}
    assert {types[i] for i in instances(endpoint, "harbor").values()} == {"m6i.xlarge"}
    assert plan_is_empty(run), "the VIP on the other director leaves Terraform nothing to do"


def a_new_image_replaces_every_vm_and_the_vip_holder_last(deployment: Deployment) -> None:
    """ami_id set: every Harbor server and director is replaced with that image, one at a time, the directors
    BACKUP first; the plan afterwards is empty."""
    endpoint = deployment.endpoint
    ec2 = client(endpoint, "ec2")

    def images() -> dict[str, str]:
        return {i["InstanceId"]: i["ImageId"] for r in ec2.describe_instances(Filters=[
            {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"] for i in r["Instances"]}

    before = {**instances(endpoint, "harbor"), **instances(endpoint, "lb")}
    backup, master = deployment.directors_by_role()
    # Any image the emulator has registered, other than the one the AL2023 parameter gave the VMs.
    image = next(i["ImageId"] for i in ec2.describe_images()["Images"]
                 if i["ImageId"] not in set(images().values()) and len(i["ImageId"]) in (12, 21))
    run = deployment.up(ami_id=image)
    deployment.rolled_vip_holder_last(backup, master, "replaced")
    assert [line.split()[-1] for line in roll_steps(deployment.lines)] == ["replaced"] * 4, deployment.lines
    after = {**instances(endpoint, "harbor"), **instances(endpoint, "lb")}
    assert set(after) == set(before) and not set(after.values()) & set(before.values()), "every VM replaced"
    assert {images()[i] for i in after.values()} == {image}
    assert plan_is_empty(run)


def a_node_that_never_reports_healthy_stops_the_roll(deployment: Deployment) -> None:
    endpoint, reports = deployment.endpoint, deployment.reports
    before = instances(endpoint, "harbor")
    reports.release = "2.15.1"
    reports.healthy_ids = set()  # the new release never comes up healthy
    with pytest.raises(RollStopped) as stopped:
        deployment.up(harbor_version="2.15.1")
    message = str(stopped.value)
    assert f"{PREFIX}-harbor-0 to report healthy at 2.15.1" in message
    assert f"Not yet changed: {PREFIX}-harbor-1" in message
    assert "run harbor-ha up again" in message and "restoring the RDS snapshot" in message
    now = instances(endpoint, "harbor")
    assert now[f"{PREFIX}-harbor-1"] == before[f"{PREFIX}-harbor-1"], "the rest stays on the old release"
    assert now[f"{PREFIX}-harbor-0"] != before[f"{PREFIX}-harbor-0"]


def an_upgrade_rolls_one_node_at_a_time_after_a_snapshot_and_a_downgrade_is_refused(deployment: Deployment) -> None:
    """From the release last applied in full (2.15.0: the roll to 2.15.1 stopped), to 2.15.2."""
    endpoint, reports, lines = deployment.endpoint, deployment.reports, deployment.lines
    before = instances(endpoint, "harbor")
    directors = instances(endpoint, "lb")
    reports.release, reports.healthy_ids = "2.15.2", None
    run = deployment.up(harbor_version="2.15.2")
    after = instances(endpoint, "harbor")
    assert set(after) == set(before) and not set(after.values()) & set(before.values()), "every server replaced"
    assert instances(endpoint, "lb") == directors
    snapshots = client(endpoint, "rds").describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    (snapshot,) = [s["DBSnapshotIdentifier"] for s in snapshots if "-to-2-15-2-" in s["DBSnapshotIdentifier"]]
    assert snapshot.startswith(f"{PREFIX}-harbor-2-15-0-to-2-15-2-")
    steps = [line for line in lines
             if line.startswith(("RDS snapshot", f"{PREFIX}-harbor-")) or line in roll_steps(lines)]
    assert steps[0].startswith("RDS snapshot"), steps
    # One at a time: the second server is replaced only after the first reported healthy at 2.15.2.
    assert steps[1:] == [f"rolling {PREFIX}-harbor-0 (harbor) replaced", f"{PREFIX}-harbor-0 reports healthy at 2.15.2",
                         f"rolling {PREFIX}-harbor-1 (harbor) replaced", f"{PREFIX}-harbor-1 reports healthy at 2.15.2"]
    assert plan_is_empty(run)

    with pytest.raises(ChangeRefused, match=r'^harbor_version = "2.14.4" \(deployed: "2.15.2"\): refused'):
        deployment.up(harbor_version="2.14.4")
    assert instances(endpoint, "harbor") == after, "a refused change changes nothing"
