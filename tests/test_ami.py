"""The image of the VMs: without ``ami_id`` each VM keeps the Amazon Linux 2023 image it was created with
(Terraform ignores the SSM parameter's newer images); with it every Harbor server and director runs that
image and a new one replaces them, which ``harbor-ha up`` rolls one at a time (tests/test_rolling_e2e.py);
a standalone node (replication topologies) keeps its image, since a replacement would lose its data, and
``harbor_ha.changes`` refuses the change there."""

from __future__ import annotations

import pytest

from harbor_ha.changes import CHANGES, ROLLED, deployed_settings, refusals
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks import stack_class

from conftest import TEST_LOCAL_ENDPOINT

AMI = "ami-0123456789abcdef0"


def vms(doc: dict) -> dict[str, dict]:
    return {body["tags"]["Name"]: body for body in doc["resource"]["aws_instance"].values()}


def ignored(body: dict) -> list[str]:
    return body.get("lifecycle", {}).get("ignore_changes", [])


@pytest.mark.parametrize("stack", ["active-active", "active-standby"])
def test_a_pinned_image_runs_on_every_vm_and_its_change_replaces_them(app, synth, stack):
    doc = synth(stack_class(stack)(app, f"ami-{stack}", settings=HarborHaSettings(stacks=(stack,), ami_id=AMI),
                                   local_endpoint=TEST_LOCAL_ENDPOINT))
    for name, body in vms(doc).items():
        assert body["ami"] == AMI, name
        assert "ami" not in ignored(body), f"{name}: a new ami_id must replace it, not be ignored"
    assert "aws_ssm_parameter" not in doc.get("data", {}), "no image lookup when the image is given"


@pytest.mark.parametrize("stack", ["active-active", "master-slaves"])
def test_without_a_pinned_image_each_vm_keeps_the_one_it_was_created_with(app, synth, stack):
    doc = synth(stack_class(stack)(app, f"no-ami-{stack}", settings=HarborHaSettings(stacks=(stack,)),
                                   local_endpoint=TEST_LOCAL_ENDPOINT))
    for name, body in vms(doc).items():
        assert body["ami"].startswith("${data.aws_ssm_parameter."), name
        assert "ami" in ignored(body), name


def test_a_standalone_node_keeps_its_image_even_when_pinned(app, synth):
    doc = synth(stack_class("master-slaves")(app, "ami-ms", settings=HarborHaSettings(
        stacks=("master-slaves",), ami_id=AMI), local_endpoint=TEST_LOCAL_ENDPOINT))
    for name, body in vms(doc).items():
        assert body["ami"] == AMI and "ami" in ignored(body), f"{name}: a replacement would lose Harbor's data"


def test_an_image_change_is_rolled_on_the_fleet_and_refused_on_standalone_stacks():
    assert CHANGES["ami_id"].effect == ROLLED
    for stack in ("active-active", "active-standby"):
        deployed = deployed_settings(HarborHaSettings(stacks=(stack,)))
        assert refusals(stack, deployed, HarborHaSettings(stacks=(stack,), ami_id=AMI)) == []
    (line,) = refusals("master-slaves", deployed_settings(HarborHaSettings(stacks=("master-slaves",))),
                       HarborHaSettings(stacks=("master-slaves",), ami_id=AMI))
    assert line.startswith("ami_id") and "standalone Harbor keeps its database on the instance" in line, line
