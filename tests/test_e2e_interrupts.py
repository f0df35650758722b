"""End to end on the local AWS target: SIGINT and SIGTERM sent to the harbor-ha process alone (what CI runners
and supervisors do), and a terminal's Ctrl-C (SIGINT to the process group), while it applies master-slaves
(the stack without a database: quickest). Each time terraform stops gracefully, no terraform process outlives
harbor-ha, the state lock is free, and the message is one line naming the signal, how far the apply got and
the command that continues it; that command then completes and the stack verifies."""

from __future__ import annotations

import os
import signal

import pytest

from e2e_helpers import emulated_project, outputs, processes_in, run, start, wait_for_line

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2000)]

STACK = "master-slaves"


# Each way a signal arrives. ``harbor-ha``: to the harbor-ha process alone (a CI runner, a supervisor);
# ``process group``: to its whole group, as a terminal's Ctrl-C does (terraform hears it directly too).
SIGNALS = [("harbor-ha", signal.SIGINT), ("harbor-ha", signal.SIGTERM), ("process group", signal.SIGINT)]


def test_a_signal_stops_terraform_cleanly_and_up_continues(tmp_path):
    """One deployment interrupted once per way a signal arrives, each time while terraform is creating: the
    next up continues from the state the interrupted one left, and the last one completes, verifies, plans
    nothing and goes down. (One deployment, not one per signal: each full apply costs minutes of CI.)"""
    with emulated_project(tmp_path) as (root, endpoint):
        for to, signum in SIGNALS:
            up = start(root, endpoint, "up", STACK)
            wait_for_line(root / f"up-{STACK}.out", "] created ")  # terraform is applying
            if to == "harbor-ha":
                up.send_signal(signum)
            else:
                os.killpg(up.pid, signum)
            assert up.wait(timeout=300) == 128 + signum, (to, signum)
            _, err = outputs(root, "up", STACK)
            assert processes_in(root) == [], f"terraform outlived harbor-ha ({to}, {signum})"
            assert "Traceback" not in err
            lines = [line for line in err.splitlines() if line.startswith("harbor-ha:")]
            assert len(lines) == 1, err
            assert f"interrupted ({signal.Signals(signum).name})" in lines[0]
            assert "stopped gracefully" in lines[0] and "resources in its state" in lines[0]
            assert lines[0].endswith(f"continue with: harbor-ha up {STACK}")

        code, out, err = run(root, endpoint, "up", STACK)  # also shows the state lock was released
        assert code == 0, out[-3000:] + err
        code, out, err = run(root, endpoint, "verify", STACK)
        assert code == 0, out + err
        code, out, err = run(root, endpoint, "plan", STACK)
        assert code == 0, out[-3000:] + err
        code, out, err = run(root, endpoint, "down", STACK)
        assert code == 0, out[-3000:] + err
