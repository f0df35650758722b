"""vip-notify, keepalived's notify program, against the local AWS emulator: it moves the tagged Elastic IP to
the instance it runs on, and does nothing when the address is already there; a BACKUP remembers the address
so that becoming MASTER takes one AWS call; after a split brain the remaining master takes it back. Its calls
are signed by curl; botocore's signer judges the signature."""

from __future__ import annotations

import json
import os
import re
import subprocess
from urllib.parse import parse_qsl
from pathlib import Path

import boto3
import pytest

from harbor_ha.keepalived import TEMPLATES

from conftest import FakeImds, QuietHandler, loopback_server, require_tool

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
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "HARBOR_HA_IMDS_ENDPOINT": imds_url, "HARBOR_HA_NOTIFY_ATTEMPTS": str(attempts)}
    env.pop("AWS_PROFILE", None)
    if run_dir is not None:
        env["HARBOR_HA_RUN_DIR"] = str(run_dir)
    return subprocess.run(["bash", str(TEMPLATES / "vip-notify.sh"), name, *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module", autouse=True)
def curl():
    """vip-notify calls EC2 with curl's SigV4 signing (7.75 and later)."""
    require_tool("curl")


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


class Ec2Recorder(QuietHandler):
    """Stands in for EC2's query endpoint for one AssociateAddress: records the request as it arrived and
    answers what EC2 answers, so that the request curl signed can be judged by botocore's own SigV4 signer."""

    requests: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        answer = (b'<AssociateAddressResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
                  b"<requestId>r-1</requestId><return>true</return><associationId>eipassoc-1</associationId>"
                  b"</AssociateAddressResponse>")
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def test_the_move_is_signed_with_the_instance_roles_credentials_as_aws_signs(imds_url, tmp_path):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    role = {"AccessKeyId": "ASIAEXAMPLEKEY123456", "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "Token": "IQoJb3JpZ2luX2VjEXAMPLE/session+token=="}
    (tmp_path / "vip-notify-signed.allocation").write_text("eipalloc-0aaaabbbbccccdddd\n")
    with loopback_server(Ec2Recorder) as ec2_url:
        env = {"PATH": os.environ["PATH"], "AWS_ENDPOINT_URL": ec2_url, "HARBOR_HA_IMDS_ENDPOINT": imds_url,
               "HARBOR_HA_RUN_DIR": str(tmp_path), "HARBOR_HA_NOTIFY_ATTEMPTS": "1"}
        FakeImds.metadata = {"instance-id": "i-0123456789abcdef0", "placement/region": REGION,
                             "iam/security-credentials/": "harbor-node",
                             "iam/security-credentials/harbor-node": json.dumps({"Code": "Success", **role}, indent=2)}
        moved = subprocess.run(["bash", str(TEMPLATES / "vip-notify.sh"), "notify-signed"], env=env, text=True,
                               capture_output=True, timeout=60)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    [(path, headers, body)] = Ec2Recorder.requests
    assert dict(parse_qsl(body.decode())) == {
        "Action": "AssociateAddress", "Version": "2016-11-15", "AllocationId": "eipalloc-0aaaabbbbccccdddd",
        "InstanceId": "i-0123456789abcdef0", "AllowReassociation": "true"}
    assert headers["x-amz-security-token"] == role["Token"]
    assert role["SecretAccessKey"] not in moved.stdout + moved.stderr

    # botocore signs the same request (the headers curl signed, its timestamp) and must reach the same signature.
    signed = re.search(r"SignedHeaders=([^,]+), Signature=([0-9a-f]+)", headers["authorization"])
    assert signed and f"Credential={role['AccessKeyId']}/" in headers["authorization"]
    assert f"/{REGION}/ec2/aws4_request" in headers["authorization"]
    request = AWSRequest(method="POST", url=ec2_url + path, data=body,
                         headers={name: headers[name] for name in signed[1].split(";")})
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(Credentials(role["AccessKeyId"], role["SecretAccessKey"], role["Token"]), "ec2", REGION)
    assert signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request) == signed[2]


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
