"""The harbor-ha command line: user mistakes end in one message and exit 2, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from conftest import PROJECT
from harbor_ha.cli import main
from harbor_ha.terraform_config import find_mirror


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copy(PROJECT / "cdktf.json", tmp_path / "cdktf.json")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HARBOR_HA_STATE_DIR", raising=False)
    return tmp_path


def test_settings_mistake_is_one_message_and_exit_2(project, monkeypatch, capsys):
    monkeypatch.setenv("HARBOR_HA_TARGET", "moon")
    assert main(["plan", "active-active"]) == 2
    err = capsys.readouterr().err
    assert "target = 'moon'" in err and "Traceback" not in err


def test_unknown_stack_is_a_usage_error(project, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["up", "active-passive"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def _aws_target_without_credentials(project, monkeypatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(project / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(project / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HARBOR_HA_TARGET", "aws")


def test_aws_without_credentials_says_how_to_get_them(project, monkeypatch, capsys):
    # boto3's default session, made while credentials were set (earlier in this process), keeps them.
    with monkeypatch.context() as earlier:
        earlier.setenv("AWS_ACCESS_KEY_ID", "earlier")
        earlier.setenv("AWS_SECRET_ACCESS_KEY", "earlier")
        boto3.client("sts", region_name="us-east-1")
    _aws_target_without_credentials(project, monkeypatch)
    assert main(["up", "active-active"]) == 2
    captured = capsys.readouterr()
    for hint in ("aws configure", "AWS_PROFILE", "aws sso login", "target 'local'"):
        assert hint in captured.err
    assert "deploying" not in captured.out  # nothing was started


def test_aws_out_of_reach_says_what_to_check(project, monkeypatch, capsys):
    _aws_target_without_credentials(project, monkeypatch)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")  # nothing listens there
    assert main(["up", "active-active"]) == 1
    captured = capsys.readouterr()
    assert "AWS cannot be reached from here" in captured.err and "HTTPS_PROXY" in captured.err
    assert "Traceback" not in captured.err and "deploying" not in captured.out


def test_env_prints_the_offline_terraform_config(project, capsys):
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert f"export TF_PLUGIN_CACHE_DIR={project / '.harbor-ha' / 'plugin-cache'}" in out
    if find_mirror():
        config = project / ".harbor-ha" / "terraformrc"
        assert f"export TF_CLI_CONFIG_FILE={config}" in out
        assert str(find_mirror()) in config.read_text()


def test_local_status_without_emulator(project, capsys):
    assert main(["local", "status"]) == 1
    assert "not running" in capsys.readouterr().out


def test_local_start_status_stop(project, capsys):
    try:
        assert main(["local", "start"]) == 0
        assert "started at http://127.0.0.1:" in capsys.readouterr().out
        assert main(["local", "start"]) == 0
        assert "already running" in capsys.readouterr().out
        assert main(["local", "status"]) == 0
    finally:
        assert main(["local", "stop"]) == 0
    assert "stopped" in capsys.readouterr().out


def test_replicate_delegates_to_the_replication_tool(capsys):
    assert main(["replicate", "--help"]) == 0
    assert "--peer" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["plan", "up"])
def test_a_downgrade_is_refused_in_one_line_before_anything_changes(project, monkeypatch, capsys, command):
    from harbor_ha.changes import record
    from harbor_ha.settings import HarborHaSettings

    record(project, "active-active", HarborHaSettings(harbor_version="2.15.2"))
    monkeypatch.setenv("HARBOR_HA_HARBOR_VERSION", "2.14.4")
    assert main([command, "active-active"]) == 2
    err = capsys.readouterr().err
    assert err.startswith('harbor-ha: harbor_version = "2.14.4" (deployed: "2.15.2"): refused') and err.count("\n") == 1
    assert not (project / "cdktf.out").exists(), "nothing was synthesized, let alone applied"


def test_outputs_refuse_a_state_whose_emulator_is_gone(project, monkeypatch, capsys):
    """A local state that lists resources while no emulator runs: outputs says so, like every other command,
    instead of answering from the stale state."""
    monkeypatch.delenv("HARBOR_HA_LOCAL_ENDPOINT")
    state = project / ".harbor-ha" / "state" / "local" / "active-active.tfstate"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"version": 4, "resources": [{"mode": "managed", "type": "aws_vpc", "name": "v",
                                                              "instances": [{"attributes": {"id": "vpc-1"}}]}],
                                 "outputs": {"vip_address": {"value": "192.0.2.1", "type": "string"}}}))
    assert main(["outputs", "active-active"]) == 2
    err = capsys.readouterr().err
    assert "emulator is not running" in err and "harbor-ha local reset" in err and "Traceback" not in err


def _jsii_child(pid: int, timeout: float = 60) -> int:
    """Until the process ``pid`` has started jsii's node runtime (a synth is under way): its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid \
                        and b"jsii-runtime" in (proc / "cmdline").read_bytes():
                    return int(proc.name)
            except (OSError, IndexError, ValueError):
                continue
        time.sleep(0.2)
    raise AssertionError("no jsii runtime started")


def test_a_terminal_ctrl_c_during_synth_ends_in_one_line_without_traceback(project):
    """Ctrl-C in a terminal signals the whole foreground process group: harbor-ha's and what runs in it."""
    process = subprocess.Popen([str(Path(sys.executable).parent / "harbor-ha"), "plan", "master-slaves"],
                               cwd=project, env={**os.environ, "PYTHONPATH": str(PROJECT)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    node = _jsii_child(process.pid)
    time.sleep(1)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert not Path(f"/proc/{node}").exists(), "jsii's node process outlived harbor-ha"
    assert err.strip() == (  # nothing of jsii's: neither a traceback nor its node runtime's channel error
        "harbor-ha: interrupted (SIGINT) while no terraform was running; continue with: harbor-ha plan master-slaves")
