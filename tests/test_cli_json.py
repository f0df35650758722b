"""``--json`` of verify, outputs and plan: one JSON document on stdout (messages go to stderr), the same exit
codes as the text forms."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import PROJECT, require_tool
from harbor_ha.cli import main
from harbor_ha.local import emulator


@pytest.fixture
def project(tmp_path, monkeypatch):
    require_tool("terraform")
    shutil.copy(PROJECT / "cdktf.json", tmp_path / "cdktf.json")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARBOR_HA_STATE_DIR", str(tmp_path / ".harbor-ha"))
    return tmp_path


def test_verify_json_of_a_stack_with_nothing_deployed_is_one_failed_check(project, capsys):
    assert main(["verify", "active-standby", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["stack"] == "active-standby" and report["passed"] == 0 and report["failed"] == 1
    assert report["checks"][0]["ok"] is False and "no resources in its state" in report["checks"][0]["what"]


def test_outputs_json_of_a_stack_with_nothing_deployed_is_an_empty_object(project, capsys):
    assert main(["outputs", "active-standby", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {}


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_plan_json_of_a_new_stack_counts_every_resource_to_add(project, monkeypatch, capsys):
    with emulator.running(project) as running:
        monkeypatch.setenv("HARBOR_HA_LOCAL_ENDPOINT", running.endpoint)
        assert main(["plan", "master-slaves", "--json"]) == 2
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    doc = json.loads((project / "cdktf.out" / "stacks" / "master-slaves" / "cdk.tf.json").read_text())
    expected = {kind: len(items) for kind, items in doc["resource"].items()}
    assert {kind: counts["add"] for kind, counts in summary["by_resource_type"].items()} == expected
    assert summary["totals"] == {"add": sum(expected.values()), "change": 0, "replace": 0, "destroy": 0}
    assert "planning master-slaves" in captured.err
