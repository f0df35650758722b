"""Interrupts and kills of the terraform harbor-ha runs (harbor_ha.terraform_run through StackRun), on real
terraform runs of ``terraform_data`` resources (terraform's built-in provider: nothing to download or contact):
a signal to harbor-ha stops terraform gracefully and says how to continue, a terraform that does not stop is
killed after the grace time, a killed terraform is named by its signal."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest

from conftest import require_tool
from e2e_helpers import processes_in
from harbor_ha import terraform_run
from harbor_ha.stack_run import DeployError, Interrupted, StackRun
from harbor_ha.settings import HarborHaSettings


@pytest.fixture
def stack_run(tmp_path, monkeypatch):
    """A StackRun whose working directory holds a terraform_data configuration (``write`` replaces it)."""
    require_tool("terraform")
    monkeypatch.delenv("HARBOR_HA_STATE_DIR", raising=False)
    run = StackRun("active-active", HarborHaSettings(), project_dir=tmp_path)
    run.workdir = tmp_path / "tf"
    run.workdir.mkdir()
    run.write = lambda resources: (run.workdir / "main.tf.json").write_text(
        json.dumps({"resource": {"terraform_data": resources}}))
    run.write({"quick": {"input": "q"}})
    run.init()
    return run


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_harbor_ha_stops_terraform_gracefully_and_names_the_way_on(stack_run, signum):
    stack_run.write({"quick": {"input": "q"}, "slow": {"provisioner": [{"local-exec": {"command": "sleep 60"}}]}})
    threading.Timer(5, os.kill, (os.getpid(), signum)).start()
    with pytest.raises(Interrupted) as interrupted:
        stack_run.terraform("apply", skip_plan=True)
    line = str(interrupted.value)
    assert interrupted.value.signal == signum
    assert line.startswith(f"interrupted ({signal.Signals(signum).name}): terraform apply of stack active-active "
                           "stopped gracefully"), line
    assert line.endswith("continue with: harbor-ha up active-active")
    assert processes_in(stack_run.workdir) == []
    # The state lock was released: another terraform command runs at once.
    assert stack_run.terraform("plan", "-lock-timeout=0s", ok=(0, 2), stream=False)[0] == 2


def test_a_terraform_that_does_not_stop_is_killed_after_the_grace_time(tmp_path):
    threading.Timer(1, os.kill, (os.getpid(), signal.SIGTERM)).start()
    finished = terraform_run.run(["bash", "-c", "trap '' INT; sleep 60"], cwd=str(tmp_path), env=dict(os.environ),
                                 capture=True, grace_s=2)
    assert (finished.received, finished.killed, finished.code) == (signal.SIGTERM, True, -signal.SIGKILL)


def test_a_killed_terraform_is_named_by_its_signal(stack_run):
    # The provisioner's shell is terraform's child: its parent is terraform itself.
    stack_run.write({"killer": {"provisioner": [{"local-exec": {"command": "kill -9 $PPID"}}]}})
    with pytest.raises(DeployError) as failed:
        stack_run.terraform("apply", skip_plan=True)
    assert "terraform apply of stack active-active was killed by SIGKILL before it finished" in str(failed.value)
    assert "'harbor-ha up active-active', which continues it" in str(failed.value)
