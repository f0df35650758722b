"""The failover drill: the stacks' keepalived configuration run for real (network namespaces on this machine,
IPVS in a QEMU guest), the Elastic IP moved in the emulator, the recovery targets held, and nothing left
behind. The ``drill`` tests take minutes (CI runs them; ``-m "not drill"`` leaves them out); the others check
the figures and the command line.

What the drill tests assert does not depend on the machine's load: every scenario's outcome (a new MASTER, the
Elastic IP moved to it in the emulator, exactly one MASTER after a healed partition, nopreempt keeping the old
master BACKUP, the LVS pool following health and a pool change, nothing left behind). The recovery times are
printed; the targets they are held to belong to ``harbor-ha drill`` (exit 1 when missed, see
test_figures_are_median_and_worst_and_a_missed_target_fails_the_drill): CI shares its machine between four
workers running deploys, and a time measured there says more about the neighbours than about keepalived."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import pytest

from harbor_ha.cli import main as cli
from harbor_ha.drill import guest as qemu
from harbor_ha.drill import netns
from harbor_ha.drill.command import drill
from harbor_ha.drill.figures import summarize, table
from harbor_ha.drill.lvs import lvs_drill
from harbor_ha.drill.pair import PairDrill, processes_naming
from harbor_ha.drill.scenarios import Run
from harbor_ha.settings import HarborHaSettings

from conftest import IN_CI, require_tool

# The drills build network namespaces and keepalived pairs, and boot a guest: one pytest worker runs them all,
# one after another (pytest -n 4 --dist loadgroup), so that they do not compete with each other.
pytestmark = pytest.mark.xdist_group("drill")

# CI runs each scenario twice, to stay within its time (the README's figures come from 5 runs of
# harbor-ha drill STACK); HARBOR_HA_DRILL_RUNS asks for more.
RUNS = int(os.environ.get("HARBOR_HA_DRILL_RUNS", "2"))


def require_drill_tools(guest: bool = False) -> None:
    for tool in ("ip", "keepalived", "curl", "python3",
                 *(("qemu-system-x86_64", "busybox", "nft", "ipvsadm") if guest else ())):
        require_tool(tool)
    if os.geteuid() != 0:
        message = "the drill builds network namespaces and needs root"
        pytest.fail(message) if IN_CI else pytest.skip(message)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


def nothing_left(workdir_hint: str = "harbor-ha-drill-", grace: float = 30) -> None:
    """No namespace and, once what was killed has ended (on a busy machine that takes a while), no process."""
    assert netns.leftovers() == [], "namespaces left behind"
    deadline = time.monotonic() + grace
    while processes_naming(workdir_hint) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {pid: _described(pid) for pid in processes_naming(workdir_hint)}
    assert left == {}, "keepalived or another drill process left behind"


def _described(pid: int) -> str:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return f"{state} {Path(f'/proc/{pid}/cmdline').read_bytes().replace(bytes(1), b' ').decode()[:200]}"
    except OSError:
        return "ended"


def outcomes_held(summary: dict) -> None:
    """Every run of every scenario did what it must (its problems say what did not); the figures printed."""
    print(table(summary))
    failed = {e["name"]: e["problems"] for e in summary["scenarios"] if e["failed"] or e["problems"]}
    assert failed == {}, table(summary)
    assert all(e["runs"] == RUNS for e in summary["scenarios"] if e["name"] != "lvs-pool"), table(summary)


def test_figures_are_median_and_worst_and_a_missed_target_fails_the_drill():
    runs = [Run("sigkill", i, to_master=1.5 + i / 10, to_vip=v) for i, v in enumerate((2.0, 3.0, 4.5))]
    runs += [Run("graceful-stop", 0, to_master=0.2, to_vip=1.0)]
    summary = summarize("active-standby", runs)
    sigkill = summary["scenarios"][0]
    assert sigkill["to_vip"]["median"] == 3.0 and sigkill["to_vip"]["worst"] == 4.5
    assert sigkill["target"] == {"metric": "to_vip", "limit": 4.0, "why": "a crashed master's VIP on its peer",
                                 "met": False}
    assert summary["scenarios"][1]["target"]["met"] and not summary["ok"]
    text = table(summary)
    assert "sigkill" in text and "3.00 / 4.50" in text and "FAILED" in text
    assert summarize("active-standby", runs[3:])["ok"]


def test_a_failed_run_fails_the_drill_and_is_explained():
    summary = summarize("active-active", [Run("link-cut", 0, problems=["node 1 did not become MASTER"])])
    assert not summary["ok"]
    assert "link-cut: run 1: node 1 did not become MASTER" in table(summary)


@pytest.mark.parametrize("argv, message", [
    (["drill", "active-active", "--runs", "0"], "runs = 0: allowed is a whole number from 1 to 20"),
    (["drill", "master-slaves"], "invalid choice: 'master-slaves' (choose from 'active-active', 'active-standby')"),
])
def test_bad_drill_arguments_are_one_clear_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.drill
@pytest.mark.timeout(600)
@pytest.mark.parametrize("stack", ["active-standby", "active-active"])
def test_the_vrrp_pair_fails_over(stack):
    """Every scenario of the stack's VRRP pair, RUNS times: each ends as it must (targets: see the module)."""
    require_drill_tools()
    summary = drill(stack, HarborHaSettings(), RUNS, lvs=False)
    outcomes_held(summary)
    names = [s["name"] for s in summary["scenarios"]]
    assert names == ["graceful-stop", "sigkill", "link-cut", *(["harbor-unhealthy"] if stack == "active-standby"
                                                                else []), "old-master-returns"]
    nothing_left()


@pytest.mark.drill
@pytest.mark.timeout(900)
def test_lvs_in_a_real_kernel_balances_checks_and_takes_a_new_server():
    """IPVS in the guest, the director as the stack runs it (keepalived --vrrp and --check, lb-pool installing
    the pool): spread, SNAT (and its control), persistence, an unhealthy server out and back, and a pool
    change that keeps the MASTER."""
    require_drill_tools(guest=True)
    runs, _ = lvs_drill(HarborHaSettings(), RUNS)
    checks = runs[0]
    assert checks.scenario == "lvs-pool" and checks.ok, checks.problems
    assert set(checks.checks) >= {  # type: ignore[attr-defined]
        "requests spread over the healthy servers", "without the SNAT rule no answer comes back (control)",
        "with the SNAT rule the answer comes back", "persistence keeps one client on one server",
        "an unhealthy server gets no requests", "the added server enters the pool after the reload",
        "the reload keeps the MASTER", "the added server receives requests"}
    outcomes_held(summarize("active-active", runs))
    assert processes_naming("harbor-ha-lvs-") == [], "QEMU left behind"


@pytest.mark.drill
@pytest.mark.timeout(300)
def test_a_drill_that_fails_leaves_nothing_behind():
    require_drill_tools()
    with pytest.raises(RuntimeError, match="a failing scenario"):
        with PairDrill("active-standby", HarborHaSettings()) as pair:
            started = [node.process.pid for node in pair.nodes]
            emulator = pair.emulator_address
            raise RuntimeError("a failing scenario")
    assert not any(alive(pid) for pid in started), "keepalived left behind"
    assert processes_naming(f"--port {emulator[1]}") == [], "the emulator left behind"
    nothing_left()


@pytest.mark.drill
@pytest.mark.timeout(300)
def test_a_guest_that_overruns_is_killed():
    require_drill_tools(guest=True)
    guest = qemu.build()
    with tempfile.TemporaryDirectory(prefix="harbor-ha-lvs-overrun-") as share:
        Path(share, "run.sh").write_text("sleep 600\n")
        booted = qemu.run(guest, Path(share), timeout=5)
        assert booted.returncode == -signal.SIGKILL and "time is up" in booted.stdout
        assert processes_naming(share) == []
