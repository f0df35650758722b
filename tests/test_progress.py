"""Progress of terraform apply/destroy (harbor_ha.progress, through StackRun's hook) and ``plan --json``'s
summary, on real terraform runs of a small configuration of ``terraform_data`` resources (terraform's
built-in provider: nothing to download, nothing to contact)."""

from __future__ import annotations

import io
import json

import pytest
from python_terraform import IsFlagged, IsNotFlagged

from conftest import require_tool
from harbor_ha.stack_run import DeployError, StackRun
from harbor_ha.plan_summary import summarize
from harbor_ha.progress import Progress
from harbor_ha.settings import HarborHaSettings
from harbor_ha.terraform_config import UPDATE_CHECKS_OFF, terraform_env

# One apply_progress message exactly as terraform 1.11.4 wrote it (it comes only after 10 s of work).
RECORDED_APPLY_PROGRESS = (
    '{"@level":"info","@message":"terraform_data.b: Still creating... [10s elapsed]","@module":"terraform.ui",'
    '"hook":{"resource":{"addr":"terraform_data.b","module":"","resource":"terraform_data.b",'
    '"implied_provider":"terraform","resource_type":"terraform_data","resource_name":"b","resource_key":null},'
    '"action":"create","elapsed_seconds":10},"type":"apply_progress"}')


def config(resources: dict) -> str:
    return json.dumps({"resource": {"terraform_data": resources}})


class TtyBuffer(io.StringIO):
    """An output that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    """A StackRun whose working directory holds a terraform_data configuration (``write`` replaces it)."""
    require_tool("terraform")
    monkeypatch.delenv("HARBOR_HA_STATE_DIR", raising=False)
    stack_run = StackRun("active-active", HarborHaSettings(), project_dir=tmp_path)
    stack_run.workdir = tmp_path / "tf"
    stack_run.workdir.mkdir()

    def write(resources: dict) -> StackRun:
        (stack_run.workdir / "main.tf.json").write_text(config(resources))
        return stack_run

    stack_run.write = write
    write({"a": {"input": "a"}, "b": {"input": "b"}, "c": {"input": "c"}}).init()
    return stack_run


def test_apply_and_destroy_report_resources_done_of_planned_in_plain_lines(run, capsys):
    run.terraform("apply", skip_plan=True)
    out = capsys.readouterr().out.splitlines()
    assert "harbor-ha: apply active-active: planned 3 to add" in out
    created = [line for line in out if "] created terraform_data." in line]
    assert len(created) == 3
    assert created[-1].startswith("harbor-ha: [3/3 resources, 0:")
    assert any("finished, 3/3 resources" in line and "Apply complete!" in line for line in out)
    assert "\r" not in "\n".join(out)  # not a terminal: no in-place updates

    run.terraform("destroy", force=IsNotFlagged, auto_approve=IsFlagged)
    out = capsys.readouterr().out
    assert "planned 3 to destroy" in out and out.count("] destroyed terraform_data.") == 3


def test_a_failed_resource_is_named_and_terraforms_error_is_raised(run, capsys):
    run.write({"ok": {"input": "x"}, "broken": {"provisioner": [{"local-exec": {"command": "exit 3"}}]}})
    with pytest.raises(DeployError) as error:
        run.terraform("apply", skip_plan=True)
    out = capsys.readouterr().out
    assert "FAILED terraform_data.broken" in out and "] created terraform_data.ok" in out
    assert "failed with exit code 1" in str(error.value) and "local-exec provisioner error" in str(error.value)


def test_in_a_terminal_one_line_updates_in_place(run, tmp_path):
    from harbor_ha.progress import follow

    out = TtyBuffer()
    finished = follow(["terraform", "apply", "-json", "-auto-approve", "-input=false"], cwd=run.workdir,
                      env=terraform_env(project_dir=tmp_path), label="apply", out=out)
    assert finished.returncode == 0 and finished.done == finished.planned == 3
    text = out.getvalue()
    assert text.count("\r\x1b[K") >= 3  # the status line is rewritten, not appended
    assert "[3/3 resources" in text
    # Lines that stay: the plan, the end; the per-resource updates share one line.
    assert len(text.rstrip("\n").split("\n")) <= 4


def test_a_long_running_resource_shows_terraforms_elapsed_time():
    out = TtyBuffer()
    progress = Progress(out=out, label="apply", planned=3)
    progress.feed(RECORDED_APPLY_PROGRESS)
    assert out.getvalue().startswith("\r\x1b[K") and "0/3 resources" in out.getvalue()
    assert out.getvalue().endswith("create terraform_data.b (10s)")


def test_every_terraform_run_and_harbor_ha_env_turn_off_update_checks(tmp_path, monkeypatch, capsys):
    """Without them cdktf ends offline runs with 'getaddrinfo ENOTFOUND checkpoint-api.hashicorp.com' (seen with
    'npx cdktf synth' here; gone after eval "$(harbor-ha env)")."""
    from harbor_ha.cli import main

    for name in UPDATE_CHECKS_OFF:
        monkeypatch.delenv(name, raising=False)
    env = terraform_env(project_dir=tmp_path)
    for name, value in UPDATE_CHECKS_OFF.items():
        assert env[name] == value
    monkeypatch.chdir(tmp_path)
    assert main(["env"]) == 0
    exports = capsys.readouterr().out
    assert "export CHECKPOINT_DISABLE=1" in exports and "export DISABLE_VERSION_CHECK=1" in exports


def test_plan_summary_counts_each_kind_of_change_per_resource_type(run):
    run.write({"a": {"input": "a"}, "b": {"triggers_replace": "1"}, "c": {"input": "c"}})
    run.terraform("apply", skip_plan=True)
    run.write({"a": {"input": "a2"}, "b": {"triggers_replace": "2"}, "d": {"input": "d"}})
    from harbor_ha.plan_summary import plan

    summary = plan(run)
    assert summary["changes"] is True
    assert summary["totals"] == {"add": 1, "change": 1, "replace": 1, "destroy": 1}
    assert summary["by_resource_type"] == {"terraform_data": summary["totals"]}
    assert {r["address"]: r["action"] for r in summary["resources"]} == {
        "terraform_data.a": "change", "terraform_data.b": "replace", "terraform_data.c": "destroy",
        "terraform_data.d": "add"}
    run.terraform("apply", skip_plan=True)
    assert plan(run)["changes"] is False


def test_plan_summary_ignores_reads_and_no_ops():
    plan = {"resource_changes": [
        {"address": "x.a", "type": "x", "change": {"actions": ["no-op"]}},
        {"address": "x.b", "type": "x", "change": {"actions": ["read"]}},
        {"address": "y.c", "type": "y", "change": {"actions": ["create", "delete"]}}]}
    assert summarize(plan, "s")["totals"] == {"add": 0, "change": 0, "replace": 1, "destroy": 0}


def test_data_sources_read_while_planning_are_not_counted_as_planned_changes(run, capsys):
    run.write({"a": {"input": "a"}})
    other = run.workdir.parent / "other.tfstate"
    other.write_text(json.dumps({"version": 4, "serial": 1, "lineage": "l", "outputs": {}, "resources": []}))
    (run.workdir / "data.tf.json").write_text(json.dumps({"data": {"terraform_remote_state": {"other": {
        "backend": "local", "config": {"path": str(other)}}}}}))
    run.terraform("apply", skip_plan=True)
    out = capsys.readouterr().out
    assert "[1/1 resources" in out and "data.terraform_remote_state" not in out
