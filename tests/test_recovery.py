"""Recovery's matching of what the target holds to the stack's configuration and state, on recorded
documents: Terraform's unique name suffixes, per-type ids, the refusal to rename what holds data, and a state
file a kill cut short."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harbor_ha.settings import HarborHaSettings
from harbor_ha.stack_run import DeployError, StackRun
from harbor_ha.inventory import name_prefix_of
from harbor_ha.recovery import _known_ids, _unmanaged_addresses, refuse_renaming_data


class RecordedStackRun:
    """Stands for a ``harbor_ha.stack_run.StackRun``: its synthesized ``cdk.tf.json`` in ``workdir`` and the
    ``terraform show -json`` document its ``state()`` would return."""

    def __init__(self, workdir: Path, config: dict, state: dict) -> None:
        self.workdir, self._state, self.stack = workdir, state, "active-standby"
        (workdir / "cdk.tf.json").write_text(json.dumps({"resource": config}))

    def state(self) -> dict:
        return self._state


def _state(*resources: tuple[str, str, dict]) -> dict:
    return {"values": {"root_module": {"resources": [
        {"mode": "managed", "type": kind, "name": name, "address": f"{kind}.{name}", "values": values}
        for kind, name, values in resources]}}}


def test_name_prefix_of_strips_terraforms_unique_suffix():
    assert name_prefix_of("harbor-as-20261201085623398000000004") == "harbor-as-"
    assert name_prefix_of("harbor-as-registry") == "harbor-as-registry"


def test_a_database_and_its_subnet_group_sharing_a_name_are_told_apart():
    ids, _ = _known_ids(_state(("aws_db_subnet_group", "subnets", {"id": "harbor-as-registry",
                                                                    "name": "harbor-as-registry"}),
                               ("aws_default_security_group", "default", {"id": "sg-1"})))
    assert "aws_db_subnet_group harbor-as-registry" in ids
    assert "aws_db_instance harbor-as-registry" not in ids
    assert "aws_security_group sg-1" in ids  # the VPC's default group, adopted by Terraform


def test_unmanaged_addresses_are_keyed_by_name_tag_identifier_and_prefix(tmp_path):
    config = {"aws_vpc": {"vpc": {"tags": {"Name": "harbor-as"}}},
              "aws_db_instance": {"db": {"identifier": "harbor-as-registry"}},
              "aws_iam_role": {"role": {"name_prefix": "harbor-as-"}},
              "aws_subnet": {"held": {"tags": {"Name": "harbor-as-a"}}, "computed": {"tags": {"Name": "${x}"}}},
              # A data store's group has no Name tag: the inventory knows it by its group name.
              "aws_security_group": {"db": {"name": "harbor-as-registry-db"},
                                     "lb": {"name_prefix": "harbor-as-lb-", "tags": {"Name": "harbor-as-lb"}}}}
    run = RecordedStackRun(tmp_path, config, {})
    found = _unmanaged_addresses(run, _state(("aws_subnet", "held", {"id": "subnet-1"})))
    assert found == {("aws_vpc", "harbor-as"): ["aws_vpc.vpc"],
                     ("aws_db_instance", "harbor-as-registry"): ["aws_db_instance.db"],
                     ("aws_iam_role", "harbor-as-"): ["aws_iam_role.role"],
                     ("aws_security_group", "harbor-as-registry-db"): ["aws_security_group.db"],
                     ("aws_security_group", "harbor-as-lb"): ["aws_security_group.lb"]}


def test_renaming_a_deployed_database_is_refused_before_any_change(tmp_path):
    config = {"aws_db_instance": {"db": {"identifier": "harbor-as-registry"}},
              "aws_s3_bucket": {"bucket": {"bucket_prefix": "harbor-as-registry-"}}}
    same = RecordedStackRun(tmp_path, config, _state(("aws_db_instance", "db", {"identifier": "harbor-as-registry"})))
    refuse_renaming_data(same)
    earlier = RecordedStackRun(tmp_path, config, _state(
        ("aws_db_instance", "db", {"identifier": "harbor-registry"}),
        ("aws_s3_bucket", "bucket", {"bucket_prefix": "harbor-registry-"})))
    with pytest.raises(DeployError) as refused:
        refuse_renaming_data(earlier)
    assert "aws_db_instance 'harbor-registry' (now named 'harbor-as-registry')" in str(refused.value)
    assert "aws_s3_bucket 'harbor-registry-'" in str(refused.value) and "nothing was changed" in str(refused.value)


def test_a_state_file_cut_short_is_kept_aside_and_the_backup_put_back(tmp_path, capsys):
    run = StackRun("active-standby", HarborHaSettings(), project_dir=tmp_path)
    run.state_file.parent.mkdir(parents=True)
    run.state_file.write_text('{\n  "version": 4,\n  "resources": [{"mode": "managed", "ty')
    backup = run.state_file.with_name(run.state_file.name + ".backup")
    backup.write_text('{"version": 4, "serial": 3, "resources": []}')
    run._set_aside_a_cut_short_state()
    assert run.state_file.read_text() == backup.read_text()
    (aside,) = run.state_file.parent.glob("active-standby.tfstate.cut-short-*")
    assert aside.read_text().endswith('"ty')
    assert "was cut short while terraform wrote it" in capsys.readouterr().out

    run._set_aside_a_cut_short_state()  # a whole state is left alone
    assert run.state_file.read_text() == backup.read_text()
    backup.unlink()
    run.state_file.write_text('{"version": 4, "resou')
    run._set_aside_a_cut_short_state()
    assert not run.state_file.exists() and "no earlier state to put back" in capsys.readouterr().out

    (run.workdir / ".terraform").mkdir(parents=True)  # initialized: what verify and outputs read through
    run.state_file.write_text('{"version": 4, "resou')
    run.ready()
    assert not run.state_file.exists() and "was cut short" in capsys.readouterr().out


def test_a_state_file_a_running_terraform_holds_is_left_alone(tmp_path):
    """A terraform writing the state holds its fcntl lock (another process here: the lock is per process)."""
    run = StackRun("active-standby", HarborHaSettings(), project_dir=tmp_path)
    run.state_file.parent.mkdir(parents=True)
    run.state_file.write_text('{"version": 4, "resou')
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time\n"
                               f"f = open({str(run.state_file)!r}, 'r+'); fcntl.lockf(f, fcntl.LOCK_EX)\n"
                               "print('locked', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        run._set_aside_a_cut_short_state()
        assert run.state_file.read_text() == '{"version": 4, "resou'
    finally:
        holder.kill()
        holder.wait()
    run._set_aside_a_cut_short_state()
    assert not run.state_file.exists()
