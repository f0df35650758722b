"""vip-notify, keepalived's notify program, against the local AWS emulator: it moves the tagged Elastic IP to
the instance it runs on, and does nothing when the address is already there; a BACKUP remembers the address
so that becoming MASTER takes one AWS call; after a split brain the remaining master takes it back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import boto3
import pytest

from harbor_ha.keepalived import TEMPLATES

from conftest import PROJECT, FakeImds, require_tool

REGION = "eu-west-1"
@pytest.fixture(scope="module")
def moto_url(moto_endpoint):
    return moto_endpoint


@pytest.fixture(scope="module")
def ec2(moto_url):
    return boto3.client("ec2", region_name=REGION, endpoint_url=moto_url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def two_instances(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.0.0/24")["Subnet"]["SubnetId"]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    reservation = ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, SubnetId=subnet, InstanceType="t3.small")
    return [i["InstanceId"] for i in reservation["Instances"]]


def vip(ec2, name: str) -> str:
    return ec2.allocate_address(Domain="vpc", TagSpecifications=[{
        "ResourceType": "elastic-ip", "Tags": [{"Key": "harbor-ha:vip", "Value": name}]}])["AllocationId"]


def address(ec2, allocation: str) -> dict:
    return ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0]


def notify(moto_url: str, imds_url: str, instance_id: str, name: str, attempts: int = 2, *args: str,
           run_dir: Path | None = None):
    FakeImds.metadata = {"instance-id": instance_id, "placement/region": REGION}
    env = {**os.environ, "PATH": f"{PROJECT / '.venv' / 'bin'}:{os.environ['PATH']}",
           "AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "HARBOR_HA_IMDS_ENDPOINT": imds_url, "HARBOR_HA_NOTIFY_ATTEMPTS": str(attempts)}
    env.pop("AWS_PROFILE", None)
    if run_dir is not None:
        env["HARBOR_HA_RUN_DIR"] = str(run_dir)
    return subprocess.run(["bash", str(TEMPLATES / "vip-notify.sh"), name, *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module", autouse=True)
def aws_cli():
    if not (PROJECT / ".venv" / "bin" / "aws").exists():
        require_tool("aws")


def test_master_takes_the_vip_and_a_second_run_changes_nothing(ec2, two_instances, moto_url, imds_url):
    a, b = two_instances
    allocation = vip(ec2, "notify-move")
    ec2.associate_address(AllocationId=allocation, InstanceId=a)

    FakeImds.requests.clear()
    moved = notify(moto_url, imds_url, b, "notify-move")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    after_move = address(ec2, allocation)
    assert after_move["InstanceId"] == b
    assert f"moved {allocation} from {a} to {b}" in moved.stdout
    assert "/latest/meta-data/placement/region" in FakeImds.requests, "the region comes from the metadata service"

    again = notify(moto_url, imds_url, b, "notify-move")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already on" in again.stdout
    assert address(ec2, allocation)["AssociationId"] == after_move["AssociationId"], "no new association was made"


def test_a_vip_on_no_instance_is_taken(ec2, two_instances, moto_url, imds_url):
    allocation = vip(ec2, "notify-free")
    result = notify(moto_url, imds_url, two_instances[0], "notify-free")
    assert result.returncode == 0, result.stdout + result.stderr
    assert address(ec2, allocation)["InstanceId"] == two_instances[0]


def test_only_the_vip_with_the_right_tag_moves(ec2, two_instances, moto_url, imds_url):
    a, b = two_instances
    other = vip(ec2, "notify-other")
    ec2.associate_address(AllocationId=other, InstanceId=a)
    result = notify(moto_url, imds_url, b, "notify-missing", attempts=2)
    assert result.returncode == 1
    assert "no Elastic IP is tagged harbor-ha:vip=notify-missing" in result.stdout
    assert "giving up after 2 attempts" in result.stdout
    assert address(ec2, other)["InstanceId"] == a


@pytest.mark.parametrize("args", [[], ["vip", "--fast"], ["vip", "--check", "extra"]])
def test_usage_error(args):
    result = subprocess.run(["bash", str(TEMPLATES / "vip-notify.sh"), *args], capture_output=True, text=True)
    assert result.returncode == 2 and "usage: vip-notify NAME [--prepare | --check]" in result.stderr


def test_a_backup_remembers_the_vip_and_takes_it_in_one_call(ec2, two_instances, moto_url, imds_url, tmp_path):
    a, b = two_instances
    allocation = vip(ec2, "notify-fast")
    ec2.associate_address(AllocationId=allocation, InstanceId=a)
    prepared = notify(moto_url, imds_url, b, "notify-fast", 2, "--prepare", run_dir=tmp_path)
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    assert (tmp_path / "vip-notify-fast.allocation").read_text().strip() == allocation
    assert address(ec2, allocation)["InstanceId"] == a, "--prepare moves nothing"

    moved = notify(moto_url, imds_url, b, "notify-fast", run_dir=tmp_path)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert f"moved {allocation} to {b}" in moved.stdout, "the remembered allocation: no lookup, one call"
    assert address(ec2, allocation)["InstanceId"] == b


def test_a_remembered_allocation_that_aws_does_not_know_is_looked_up_again(ec2, two_instances, moto_url, imds_url,
                                                                           tmp_path):
    a, b = two_instances
    allocation = vip(ec2, "notify-stale")
    ec2.associate_address(AllocationId=allocation, InstanceId=a)
    (tmp_path / "vip-notify-stale.allocation").write_text("eipalloc-0123456789abcdef0\n")
    result = notify(moto_url, imds_url, b, "notify-stale", run_dir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "did not move; looking the VIP up again" in result.stdout
    assert f"moved {allocation} from {a} to {b}" in result.stdout
    assert not (tmp_path / "vip-notify-stale.allocation").exists()


def test_check_takes_the_vip_back_only_when_it_is_elsewhere(ec2, two_instances, moto_url, imds_url, tmp_path):
    a, b = two_instances
    allocation = vip(ec2, "notify-check")
    ec2.associate_address(AllocationId=allocation, InstanceId=b)
    (tmp_path / "vip-notify-check.allocation").write_text(allocation + "\n")
    back = notify(moto_url, imds_url, a, "notify-check", 2, "--check", run_dir=tmp_path)
    assert back.returncode == 0 and f"moved {allocation} from {b} to {a}" in back.stdout, back.stdout + back.stderr
    kept = address(ec2, allocation)["AssociationId"]
    again = notify(moto_url, imds_url, a, "notify-check", 2, "--check", run_dir=tmp_path)
    assert "already on" in again.stdout, "--check looks before it moves, even with a remembered allocation"
    assert address(ec2, allocation)["AssociationId"] == kept


def test_programs_pass_shellcheck():
    shellcheck = require_tool("shellcheck")
    scripts = sorted(Path(TEMPLATES).glob("*.sh"))
    assert {p.name for p in scripts} >= {"vip-notify.sh", "check-harbor-health.sh", "lvs-nat-setup.sh"}
    result = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
