"""Rolling changes: ``harbor-ha up`` never stops or replaces two members of a redundant group at once.

A member is a VM of a redundant group (the Harbor servers, the load-balancer pair, the active-standby pair,
the master-slaves Harbors), found by its ``harbor-ha:role`` tag. ``plan_roll`` reads Terraform's saved plan:
a member whose change stops it (an update of anything but its tags or volume size), replaces it or destroys
it is rolled; everything else is applied first, in one ``terraform apply -target`` run. Then one member at a
time:

1. a Harbor server behind the load balancers is drained first: weight 0 in the pool parameter, both directors'
   acknowledgement (their ``harbor-ha:lb-pool`` tag), then ``drain_seconds`` for open connections;
2. a VIP holder is taken last in its group, after the VIP has been moved to a member already rolled (the
   BACKUP goes first, then the VIP moves, then the old MASTER);
3. ``terraform apply -target`` of that member alone;
4. the new member must report healthy (``harbor_ha.node_reports``) within ``health_timeout``; otherwise the
   roll stops there with what happened and how to continue or go back, the remaining members untouched.

A ``harbor_version`` change first takes an RDS snapshot named for the deployment and both releases and
waits for it. Replacing servers one at a time means that exactly one new-release core starts against the
old schema and migrates it; the next one is replaced only after it reports healthy at the new release.
Last, one plain ``terraform apply`` settles what remains (the pool back to weight 1), so the plan after a
roll is empty.

On the local target no VM boots, so there is no report to wait for: the roll says so and goes on (tests play
the nodes' reports with a stand-in).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Callable

from harbor_ha.keepalived import pool_parameter_name
from harbor_ha.node_reports import HEALTH_TAG, LB_POOL_TAG, HealthReport
from harbor_ha.rules import ROLE_TAG_KEY, VIP_TAG_KEY

# Instance attributes whose change neither stops nor replaces the instance.
HARMLESS = frozenset({"tags", "tags_all", "root_block_device"})


class RollStopped(RuntimeError):
    """A member did not become healthy in time: ``str()`` says which, what is left, and how to go on."""


@dataclass(frozen=True)
class RollOptions:
    """How long a roll waits. Defaults suit AWS (a Harbor node boots in 5-10 minutes)."""

    health_timeout: float = 1200
    """Seconds a new or restarted member has to report healthy. Default 1200."""
    ack_timeout: float = 120
    """Seconds the directors have to apply a pool change (their timer runs every 15 s). Default 120."""
    drain_seconds: float = 30
    """Seconds open connections keep a drained server before it is stopped. Default 30."""
    poll_seconds: float = 5
    """Between two reads of the reports. Default 5."""
    wait_for_reports: bool | None = None
    """Wait for the nodes' reports; default: on AWS yes, on the local target (no VM runs) no."""


@dataclass(frozen=True)
class Member:
    """One VM of a redundant group that the plan stops, replaces or destroys."""

    address: str
    name: str
    role: str
    action: str
    """``replace``, ``update`` (stopped and started in place) or ``delete``."""
    instance_id: str = ""
    private_ip: str = ""
    vip: str = ""
    """The ``harbor-ha:vip`` name if the member may hold the VIP."""

    def describe(self) -> str:
        what = {"replace": "replaced", "update": "stopped, changed and started", "delete": "drained and destroyed"}
        return f"{self.name} ({self.role}) {what[self.action]}"


@dataclass
class RollPlan:
    """What ``up`` does: ``others`` at once, then ``members`` one at a time, in this order."""

    others: list[str] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    versions: tuple[str, str] | None = None
    """(deployed, new) Harbor release when it changes: the RDS snapshot comes first."""

    def lines(self) -> list[str]:
        if not self.members:
            return []
        lines = [f"rolling change: {len(self.others)} other resource change(s) first, then one member at a time:"]
        if self.versions:
            lines.append(f"  0. RDS snapshot before Harbor {self.versions[0]} -> {self.versions[1]}")
        lines += [f"  {n}. {m.describe()}, then wait for its health report" if m.action != "delete"
                  else f"  {n}. {m.describe()}" for n, m in enumerate(self.members, start=1)]
        return lines


def _action(change: dict) -> str:
    actions = change["change"]["actions"]
    if "delete" in actions and "create" in actions:
        return "replace"
    if actions == ["delete"]:
        return "delete"
    if actions == ["update"]:
        before, after = change["change"]["before"] or {}, change["change"]["after"] or {}
        unknown = change["change"].get("after_unknown") or {}
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        changed |= {k for k, v in unknown.items() if v is True}
        return "" if changed <= HARMLESS else "update"
    return ""


def _address(reference: str) -> str:
    """The resource a reference names: ``aws_x.y.attr`` -> ``aws_x.y``, ``data.aws_x.y.attr`` -> ``data.aws_x.y``."""
    parts = reference.split(".")
    return ".".join(parts[:3] if parts[0] == "data" else parts[:2])


def _dependencies(plan: dict) -> dict[str, set[str]]:
    """Resource address -> every address it depends on, through data sources too (root module)."""
    direct: dict[str, set[str]] = {}
    for resource in plan.get("configuration", {}).get("root_module", {}).get("resources", []):
        refs = set(resource.get("depends_on", []))

        def walk(node):
            if isinstance(node, dict):
                refs.update(node.get("references", []))
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(resource.get("expressions", {}))
        direct[resource["address"]] = {_address(r) for r in refs}
    closed: dict[str, set[str]] = {}

    def close(address: str, seen: frozenset = frozenset()) -> set[str]:
        if address not in closed:
            found = set()
            for dependency in direct.get(address, set()) - seen:
                found |= {dependency} | close(dependency, seen | {address})
            closed[address] = found
        return closed[address]

    return {address: close(address) for address in direct}


def read_plan(plan: dict, versions: tuple[str, str] | None = None) -> RollPlan:
    """The roll of Terraform's plan JSON (``terraform show -json`` of a saved plan)."""
    roll = RollPlan(versions=versions)
    members: list[Member] = []
    changed: list[str] = []
    for change in plan.get("resource_changes", []):
        actions = change["change"]["actions"]
        if change.get("mode") != "managed" or actions in (["no-op"], ["read"]):
            continue
        values = change["change"]["before"] or change["change"]["after"] or {}
        tags = values.get("tags") or {}
        action = _action(change) if change["type"] == "aws_instance" and tags.get(ROLE_TAG_KEY) else ""
        if action:
            before = change["change"]["before"] or {}
            members.append(Member(address=change["address"], name=tags.get("Name", change["address"]),
                                  role=tags[ROLE_TAG_KEY], action=action, instance_id=before.get("id", ""),
                                  private_ip=before.get("private_ip") or values.get("private_ip") or "",
                                  vip=tags.get(VIP_TAG_KEY, "")))
        else:
            changed.append(change["address"])
    if not members:
        return RollPlan(others=changed, versions=versions)
    dependencies = _dependencies(plan)
    waiting = {m.address for m in members}
    if any(m.action == "delete" for m in members):
        # The pool leaves a server only once it is drained and destroyed.
        waiting |= {a for a in changed if a.startswith("aws_ssm_parameter.")}
    # What depends on a member or on the pool (an address association, a volume attachment, a policy naming
    # the parameter) waits for the final apply too: "terraform apply -target" would apply those with it.
    roll.others = [a for a in changed if a not in waiting and not dependencies.get(a, set()) & waiting]
    roll.members = members
    return roll


def order(members: list[Member], vip_holders: set[str]) -> list[Member]:
    """Within each group, the VIP holder last; groups in plan order."""
    return sorted(members, key=lambda m: (m.role, m.instance_id in vip_holders))


class Reports:
    """The nodes' reports and the pool parameter, read with boto3 on the target."""

    def __init__(self, live: Callable, name: str) -> None:
        self.live = live
        self.pool_parameter = pool_parameter_name(name)

    def tags(self, instance_id: str) -> dict[str, str]:
        found = self.live("ec2").describe_tags(Filters=[{"Name": "resource-id", "Values": [instance_id]}])["Tags"]
        return {t["Key"]: t["Value"] for t in found}

    def instances(self, role: str, name: str) -> list[dict]:
        reservations = self.live("ec2").describe_instances(Filters=[
            {"Name": f"tag:{ROLE_TAG_KEY}", "Values": [role]}, {"Name": "tag:Name", "Values": [name]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])
        return [i for r in reservations["Reservations"] for i in r["Instances"]]

    def pool(self) -> tuple[dict, int, str] | None:
        """(document, version, key id) of the pool parameter, or None without load balancers."""
        ssm = self.live("ssm")
        try:
            parameter = ssm.get_parameter(Name=self.pool_parameter, WithDecryption=True)["Parameter"]
        except ssm.exceptions.ParameterNotFound:
            return None
        (described,) = ssm.describe_parameters(
            ParameterFilters=[{"Key": "Name", "Values": [self.pool_parameter]}])["Parameters"]
        return json.loads(parameter["Value"]), parameter["Version"], described.get("KeyId", "")

    def set_weight(self, address: str, weight: int) -> int | None:
        """Give ``address`` ``weight`` in the pool (as Terraform's jsonencode writes it); the new version."""
        current = self.pool()
        if current is None or address not in {s["address"] for s in current[0]["servers"]}:
            return None
        document, _, key = current
        for server in document["servers"]:
            if server["address"] == address:
                server["weight"] = weight
        value = json.dumps(document, sort_keys=True, separators=(",", ":"))
        options = {"KeyId": key} if key else {}
        return self.live("ssm").put_parameter(Name=self.pool_parameter, Value=value, Type="SecureString",
                                              Overwrite=True, **options)["Version"]


class Roller:
    """Runs a ``RollPlan`` on a ``harbor_ha.stack_run.StackRun``."""

    def __init__(self, run, options: RollOptions, say: Callable[[str], None] = print) -> None:
        from harbor_ha.verify import Live

        self.run = run
        self.options = options
        self.say = say
        self.live = Live(run.target)
        self.reports = Reports(self.live, run.settings.resource_prefix)
        waiting = options.wait_for_reports
        self.wait = run.target.name != "local" if waiting is None else waiting

    def apply(self, targets: list[str] | None = None) -> None:
        options = {"target": targets} if targets else {}
        self.run.terraform("apply", skip_plan=True, **options)

    def roll(self, plan: RollPlan) -> None:
        for line in plan.lines():
            self.say(line)
        if plan.others:
            self.say(f"applying the other change(s) first: {', '.join(plan.others)}")
            self.apply(plan.others)
        if plan.versions:
            self.snapshot(*plan.versions)
        holders = self.vip_holders()
        members = order(plan.members, holders)
        done: list[Member] = []
        for member in members:
            if member.vip and member.instance_id in holders:
                self.move_vip(member, done)  # said first: the VIP leaves before its holder stops
            self.say(f"rolling {member.describe()}")
            drained = member.role == "harbor" and self.drain(member)
            if member.role == "lb" and member.action == "update":
                # Restarted, it acknowledges the pool again: only a fresh acknowledgement counts.
                self.live("ec2").delete_tags(Resources=[member.instance_id], Tags=[{"Key": LB_POOL_TAG}])
            started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
            self.apply([member.address])
            if member.action != "delete":
                self.wait_healthy(member, started, plan, members[len(done) + 1:])
                if drained:
                    self.set_weight(member.private_ip, 1)
            done.append(member)
        self.say("settling the rest")
        self.apply()

    # ---- steps ---------------------------------------------------------------------------------
    def snapshot(self, old: str, new: str) -> None:
        from harbor_ha.verify import resources_by_type

        for db in resources_by_type(self.run.state()).get("aws_db_instance", []):
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S")
            name = f"{self.run.settings.resource_prefix}-harbor-{old}-to-{new}-{stamp}".replace(".", "-")
            self.say(f"RDS snapshot {name} of {db['identifier']} before the upgrade")
            rds = self.live("rds")
            rds.create_db_snapshot(DBInstanceIdentifier=db["identifier"], DBSnapshotIdentifier=name,
                                   Tags=[{"Key": "harbor-ha:upgrade", "Value": f"{old} to {new}"}])
            rds.get_waiter("db_snapshot_available").wait(DBSnapshotIdentifier=name,
                                                          WaiterConfig={"Delay": 15, "MaxAttempts": 240})

    def vip_holders(self) -> set[str]:
        from harbor_ha.verify import resources_by_type, vip_holder

        holders = set()
        for eip in resources_by_type(self.run.state()).get("aws_eip", []):
            if VIP_TAG_KEY in (eip.get("tags") or {}):
                holders.add(vip_holder(self.live("ec2"), eip["allocation_id"])[1])
        return holders

    def move_vip(self, member: Member, done: list[Member]) -> None:
        """Before the MASTER goes: the VIP onto a member of its group that is already rolled (or its peer)."""
        ec2 = self.live("ec2")
        (address,) = ec2.describe_addresses(Filters=[{"Name": f"tag:{VIP_TAG_KEY}", "Values": [member.vip]}])["Addresses"]
        peers = [i for i in self.vip_peers(member) if i != member.instance_id]
        ready = [m for m in done if m.role == member.role]
        target = (self.current_id(ready[-1]) if ready else "") or (peers[0] if peers else "")
        if not target:
            self.say(f"no peer of {member.name} to take the VIP: it moves when VRRP elects one")
            return
        ec2.associate_address(AllocationId=address["AllocationId"], InstanceId=target, AllowReassociation=True)
        self.say(f"moved the VIP {address.get('PublicIp', '')} from {member.name} to {target}")

    def vip_peers(self, member: Member) -> list[str]:
        reservations = self.live("ec2").describe_instances(Filters=[
            {"Name": f"tag:{VIP_TAG_KEY}", "Values": [member.vip]}, {"Name": "instance-state-name", "Values": ["running"]}])
        return [i["InstanceId"] for r in reservations["Reservations"] for i in r["Instances"]]

    def current_id(self, member: Member) -> str:
        """The instance now behind ``member`` (a replacement has a new id)."""
        found = self.reports.instances(member.role, member.name)
        return found[0]["InstanceId"] if found else ""

    def drain(self, member: Member) -> bool:
        """Weight 0 for the server, both directors applied it, then the grace time; False without LVS."""
        version = self.set_weight(member.private_ip, 0)
        if version is None:
            if self.reports.pool() is not None:
                self.say(f"{member.name} ({member.private_ip or 'no address'}) is not in the load balancers' pool")
            return False
        self.say(f"draining {member.name} ({member.private_ip}) from the load balancers' pool")
        if self.wait:
            self.wait_for(lambda: self.directors_at(version), self.options.ack_timeout,
                          f"both load balancers to apply pool version {version}")
            time.sleep(self.options.drain_seconds)
        else:
            self.say("local target: no load balancer runs, not waiting for their acknowledgement")
        return True

    def set_weight(self, address: str, weight: int) -> int | None:
        return self.reports.set_weight(address, weight) if address else None

    def directors_at(self, version: int) -> bool:
        directors = [i for r in self.live("ec2").describe_instances(Filters=[
            {"Name": f"tag:{ROLE_TAG_KEY}", "Values": ["lb"]},
            {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"] for i in r["Instances"]]
        values = [{t["Key"]: t["Value"] for t in d.get("Tags", [])}.get(LB_POOL_TAG, "") for d in directors]
        return bool(values) and all(v.isdigit() and int(v) >= version for v in values)

    def wait_healthy(self, member: Member, since: dt.datetime, plan: RollPlan, rest: list[Member]) -> None:
        if not self.wait:
            self.say(f"local target: VMs do not boot, not waiting for {member.name}'s health report")
            return
        if member.role == "lb":
            pool = self.reports.pool()
            version = pool[1] if pool else 0
            self.wait_for(lambda: self.directors_at(version), self.options.health_timeout,
                          f"{member.name} to apply the pool", member, rest)
            return
        release = plan.versions[1] if plan.versions else self.run.settings.harbor_version

        def healthy() -> bool:
            instance = self.current_id(member)
            report = HealthReport.parse(self.reports.tags(instance).get(HEALTH_TAG)) if instance else None
            return bool(report and report.healthy_at(release, since))

        self.wait_for(healthy, self.options.health_timeout, f"{member.name} to report healthy at {release}",
                      member, rest)
        self.say(f"{member.name} reports healthy at {release}")

    def wait_for(self, done: Callable[[], bool], timeout: float, what: str, member: Member | None = None,
                 rest: list[Member] = ()) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise RollStopped(self.stopped(what, timeout, member, list(rest)))
            time.sleep(self.options.poll_seconds)

    @staticmethod
    def stopped(what: str, timeout: float, member: Member | None, rest: list[Member]) -> str:
        """What a stopped roll says: what it waited for, what is left, how to continue or go back."""
        left = ", ".join(m.name for m in rest) or "none"
        text = f"the roll stopped: waited {timeout:.0f} s for {what}. Not yet changed: {left}."
        if member is not None:
            text += (f" Look at {member.name} (its console output, /var/log/cloud-init-output.log through Session "
                     "Manager). To continue once it is fixed: run harbor-ha up again (it carries on with the rest)."
                     " To go back: set the previous value again and run harbor-ha up")
            text += (", after restoring the RDS snapshot taken before the upgrade (Harbor may have migrated "
                     "the schema)." if "report healthy at" in what else ".")
        return text


# ---- harbor-ha plan / up ------------------------------------------------------------------------
def check_changes(run) -> tuple[str, str] | None:
    """Refuse, before anything changes, what the deployed stack cannot take (``harbor_ha.changes``); returns
    (deployed, new) Harbor release when it changes."""
    from harbor_ha.changes import STANDALONE, ChangeRefused, recorded, refusals

    deployed = recorded(run.project_dir, run.settings.target, run.stack)
    lines = refusals(run.stack, deployed, run.settings)
    if lines:
        raise ChangeRefused(lines)
    old, new = deployed.get("harbor_version"), run.settings.harbor_version
    return (old, new) if old and old != new and run.stack not in STANDALONE else None


def plan_changes(run, versions: tuple[str, str] | None, stream: bool = False) -> RollPlan | None:
    """Terraform's plan (saved, then read as JSON) as a roll; None when nothing changes."""
    from harbor_ha.plan_summary import saved_plan

    plan = saved_plan(run, stream)
    return None if plan is None else read_plan(plan, versions)


def up(run, options: RollOptions | None = None, say: Callable[[str], None] = print) -> None:
    """Apply the settings to ``run``'s stack: refused changes stop before anything, members roll one at a
    time, and the settings are recorded once everything is applied."""
    from harbor_ha.changes import deployed_settings, recorded, record
    from harbor_ha.recovery import before_apply
    from harbor_ha.verify import state_resources

    versions = check_changes(run)
    run.synth()
    run.init()
    before_apply(run)  # refuse renaming what holds data, import what a cut-short apply left
    # Nothing deployed yet: no member can roll, and the apply's own plan is the only one needed.
    plan = plan_changes(run, versions) if state_resources(run.state()) else RollPlan()
    if plan is None:
        changed = sorted(k for k, v in recorded(run.project_dir, run.settings.target, run.stack).items()
                         if deployed_settings(run.settings).get(k) != v)
        if changed:
            say(f"changed setting(s) {', '.join(changed)} but nothing to apply: report this as a harbor-ha bug")
    elif plan.members:
        Roller(run, options or RollOptions(), say).roll(plan)
    else:
        run.terraform("apply", skip_plan=True)
    record(run.project_dir, run.stack, run.settings)
