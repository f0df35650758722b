"""The drill's scenarios: a fault applied to the current MASTER of a running pair (``PairDrill``), what must
follow, and how long it took. Each run leaves the pair as it found it (one MASTER holding the Elastic IP, one
BACKUP), with the roles swapped, so that the next run faults the other node.

Times are measured from the fault to the peer's keepalived entering MASTER (its own report) and to the
Elastic IP being seen on the peer's instance in the emulator.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from typing import Callable

from harbor_ha.drill.pair import Node, PairDrill

# Longer than a returning node waits for adverts before it would claim MASTER (3 x advert + skew = 1.8 s):
# a node that stays BACKUP this long after joining will not preempt.
HOLD_SECONDS = 2.5
# How long one failover may take before the run counts as failed (the Harbor health check alone can take
# 3 checks x 5 s plus its timeout).
FAULT_TIMEOUT = 40.0


@dataclass
class Run:
    """One run of a scenario."""

    scenario: str
    index: int
    to_master: float | None = None
    """Seconds from the fault to the peer entering MASTER."""
    to_vip: float | None = None
    """Seconds from the fault to the Elastic IP on the peer's instance."""
    to_one_master: float | None = None
    """Link cut only: seconds from the restored link to exactly one MASTER."""
    to_vip_on_master: float | None = None
    """Link cut only: seconds from the restored link to the Elastic IP on that one MASTER."""
    to_rejoin: float | None = None
    """Returning master only: seconds from its restart to BACKUP."""
    out_of_pool: float | None = None
    """LVS: seconds from a Harbor server's unhealthy body to IPVS without it."""
    back_in_pool: float | None = None
    """LVS: seconds from its healthy body to IPVS with it again."""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    stacks: tuple[str, ...]
    run: Callable[[PairDrill, Run], None]


def _elapsed(since: float, at: float | None) -> float | None:
    return None if at is None else round(at - since, 3)


def _fail_over(drill: PairDrill, run: Run, fault: Callable[[Node], None]) -> tuple[Node, Node, float]:
    """Apply ``fault`` to the MASTER; record when its peer became MASTER and got the Elastic IP. Returns
    (old master, new master, time of the fault)."""
    master, backup = drill.master_and_backup()
    began = time.monotonic()
    fault(master)
    run.to_master = _elapsed(began, backup.wait_state("MASTER", began, FAULT_TIMEOUT))
    run.to_vip = _elapsed(began, drill.wait_vip(backup, began, FAULT_TIMEOUT))
    if run.to_master is None:
        run.problems.append(f"{backup.name} did not become MASTER within {FAULT_TIMEOUT:.0f} s")
    if run.to_vip is None:
        run.problems.append(f"the Elastic IP did not move to {backup.name} within {FAULT_TIMEOUT:.0f} s")
    return master, backup, began


def _hold(drill: PairDrill, run: Run, master: Node, returning: Node, since: float) -> None:
    """For HOLD_SECONDS: ``returning`` stays out of MASTER, ``master`` stays MASTER and keeps the Elastic IP."""
    time.sleep(HOLD_SECONDS)
    if "MASTER" in returning.transitions(since):
        run.problems.append(f"{returning.name} took MASTER back (nopreempt must keep it BACKUP)")
    if master.transitions(since) or master.state != "MASTER":
        run.problems.append(f"{master.name} left MASTER ({master.transitions(since)}): flapping")
    if drill.vip_holder() != master.instance_id:
        run.problems.append(f"the Elastic IP is not on the MASTER {master.name}")


def _restart(drill: PairDrill, run: Run, old: Node, master: Node) -> None:
    """Start the old master's keepalived again: it joins as BACKUP and stays so (``nopreempt``)."""
    if old.process is not None:
        old.process.wait(30)
    began = time.monotonic()
    old.start()
    run.to_rejoin = _elapsed(began, old.wait_state("BACKUP", began, 30))
    if run.to_rejoin is None:
        run.problems.append(f"{old.name} did not rejoin as BACKUP")
    _hold(drill, run, master, old, began)


def graceful_stop(drill: PairDrill, run: Run) -> None:
    """keepalived stopped on the MASTER (``systemctl stop``, a reboot): it sends a priority-0 advert."""
    old, master, _ = _fail_over(drill, run, lambda node: node.signal(signal.SIGTERM))
    _restart(drill, run, old, master)


def sigkill(drill: PairDrill, run: Run) -> None:
    """Every keepalived process of the MASTER killed at once (a crashed or powered-off machine): no last advert."""
    old, master, _ = _fail_over(drill, run, lambda node: node.signal(signal.SIGKILL))
    _restart(drill, run, old, master)


def link_cut(drill: PairDrill, run: Run) -> None:
    """The MASTER cut off the subnet, then reconnected. While cut both are MASTER (neither hears the other);
    once the adverts meet again exactly one stays MASTER and holds the Elastic IP, without flapping."""
    old, master, _ = _fail_over(drill, run, drill.cut_link)
    began = time.monotonic()
    drill.restore_link(old)
    deadline = began + FAULT_TIMEOUT
    while len(drill.masters()) != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    masters = drill.masters()
    if len(masters) != 1:
        run.problems.append(f"not exactly one MASTER {FAULT_TIMEOUT:.0f} s after the link came back")
        return
    run.to_one_master = _elapsed(began, time.monotonic())
    winner = masters[0]
    run.to_vip_on_master = _elapsed(began, drill.wait_vip(winner, began, FAULT_TIMEOUT))
    if run.to_vip_on_master is None:
        run.problems.append(f"the Elastic IP did not follow the one MASTER {winner.name}")
        return
    _hold(drill, run, winner, drill.nodes[1 - winner.index], began + run.to_one_master)


def harbor_unhealthy(drill: PairDrill, run: Run) -> None:
    """The MASTER's Harbor reports itself unhealthy (HTTP 200, unhealthy body): that node enters FAULT and its
    peer takes the VIP; healthy again, the node rejoins as BACKUP."""
    old, master, fault = _fail_over(drill, run, lambda node: setattr(node.health, "healthy", False))
    if old.wait_state("FAULT", fault, 5) is None:
        run.problems.append(f"{old.name} did not enter FAULT")
    began = time.monotonic()
    old.health.healthy = True
    run.to_rejoin = _elapsed(began, old.wait_state("BACKUP", began, FAULT_TIMEOUT))
    if run.to_rejoin is None:
        run.problems.append(f"{old.name} did not rejoin as BACKUP once healthy")
    _hold(drill, run, master, old, began)


def old_master_returns(drill: PairDrill, run: Run) -> None:
    """The failed master comes back (here after a SIGKILL): it stays BACKUP, the VIP stays where it is."""
    old, master, _ = _fail_over(drill, run, lambda node: node.signal(signal.SIGKILL))
    run.to_master = run.to_vip = None  # measured by "sigkill"; here the return is what counts
    _restart(drill, run, old, master)


BOTH = ("active-active", "active-standby")
SCENARIOS = (
    Scenario("graceful-stop", "keepalived stopped on the MASTER", BOTH, graceful_stop),
    Scenario("sigkill", "the MASTER's keepalived killed (machine crash)", BOTH, sigkill),
    Scenario("link-cut", "the MASTER's link cut, then restored", BOTH, link_cut),
    Scenario("harbor-unhealthy", "the active Harbor reports unhealthy", ("active-standby",), harbor_unhealthy),
    Scenario("old-master-returns", "the failed master comes back (nopreempt)", BOTH, old_master_returns),
)


def scenarios_for(stack: str) -> list[Scenario]:
    return [s for s in SCENARIOS if stack in s.stacks]


def run_scenarios(drill: PairDrill, runs: int, only: tuple[str, ...] = (),
                  progress: Callable[[Run], None] = lambda run: None) -> list[Run]:
    """Every scenario of the drill's stack (or those named in ``only``), ``runs`` times each, in order."""
    results = []
    for scenario in scenarios_for(drill.stack):
        if only and scenario.name not in only:
            continue
        for index in range(runs):
            run = Run(scenario.name, index)
            try:
                scenario.run(drill, run)
            except Exception as error:  # noqa: BLE001 (a broken run is reported, the drill goes on to clean up)
                run.problems.append(f"{type(error).__name__}: {error}")
            results.append(run)
            progress(run)
            if not run.ok and len(drill.masters()) != 1:
                return results  # the pair is not in a state another run can start from
    return results
