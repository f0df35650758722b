"""The nodes' own reports, run for real: health-report (the Harbor node's timer program) tags its instance in
the local AWS emulator, and harbor-ha reads that tag back. Stand-ins, named as such: ``FakeImds`` for the
instance metadata service and a health-check stand-in (a script that exits 0 or 1) for
check-harbor-health against a running Harbor."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from harbor_ha.harbor_boot import script_path
from harbor_ha.node_reports import HEALTH_TAG, HealthReport, report_tags_ignored

from conftest import FakeImds, require_tool

REGION = "us-east-1"


@pytest.fixture(scope="module")
def node(moto_endpoint, imds_url):
    ec2 = boto3.client("ec2", endpoint_url=moto_endpoint, region_name=REGION, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    (instance,) = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="m6i.large")["Instances"]
    FakeImds.metadata = {"instance-id": instance["InstanceId"], "placement/region": REGION}
    return ec2, instance["InstanceId"]


@pytest.mark.parametrize("healthy", [True, False])
def test_health_report_tags_its_own_instance(node, moto_endpoint, imds_url, tmp_path, healthy):
    ec2, instance = node
    stand_in = tmp_path / "health-check-stand-in"
    stand_in.write_text(f"#!/bin/sh\nexit {0 if healthy else 1}\n")
    stand_in.chmod(0o755)
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "HARBOR_HA_IMDS_ENDPOINT": imds_url,
           "HARBOR_HA_HEALTH_CHECK": str(stand_in), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    result = subprocess.run(["bash", str(script_path("health-report.sh")), "2.15.2"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance]}])["Tags"]
    (value,) = [t["Value"] for t in tags if t["Key"] == HEALTH_TAG]
    report = HealthReport.parse(value)
    assert report is not None and report.value() == value
    assert report.healthy_at("2.15.2", before) is healthy
    assert not report.healthy_at("2.15.3", before), "a report of another release does not count"


def test_health_report_passes_shellcheck():
    result = subprocess.run([require_tool("shellcheck"), str(script_path("health-report.sh"))], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("value", [None, "", "healthy", "healthy 2.15.2 yesterday", "a b c d"])
def test_unreadable_reports_count_as_none(value):
    assert HealthReport.parse(value) is None


def test_terraform_ignores_the_report_tags():
    assert report_tags_ignored(HEALTH_TAG) == ['tags["harbor-ha:health"]', 'tags_all["harbor-ha:health"]']
