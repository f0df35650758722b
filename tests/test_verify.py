"""verify's checks against resources made with boto3 on the emulator, described by a Terraform-state-like
document: all pass as built, and each change made behind the stack's back is a FAIL."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harbor_ha.target import Target
from harbor_ha.local import emulator
from harbor_ha.verify import Live, check_state

from conftest import PROJECT

ZONES = ("us-east-1a", "us-east-1b")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with emulator.running(tmp_path_factory.mktemp("verify")) as running:
        yield Live(Target("local", "us-east-1", emulator.ACCOUNT_ID, running.endpoint))


def _resource(kind: str, values: dict) -> dict:
    return {"mode": "managed", "type": kind, "values": values}


@pytest.fixture(scope="module")
def deployed(live):
    """A VIP on the first of two nodes, a load-balancer group that alone reaches the nodes on 443, and a
    bucket as the storage construct makes it; returns the state document and the ids."""
    ec2, s3 = live("ec2"), live("s3")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=zone)["Subnet"]
               for i, zone in enumerate(ZONES)]
    lb_sg = ec2.create_security_group(GroupName="lb", Description="lb", VpcId=vpc)["GroupId"]
    node_sg = ec2.create_security_group(GroupName="node", Description="node", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=node_sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": lb_sg}]}])
    image = ec2.describe_images()["Images"][0]["ImageId"]
    nodes = [ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet["SubnetId"],
                               SecurityGroupIds=[node_sg], MetadataOptions={"HttpTokens": "required"})
             ["Instances"][0]["InstanceId"] for subnet in subnets]
    vip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=vip, InstanceId=nodes[0])
    s3.create_bucket(Bucket="registry")
    s3.put_bucket_versioning(Bucket="registry", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket="registry", ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    s3.put_public_access_block(Bucket="registry", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    resources = [
        _resource("aws_instance", {"id": node, "availability_zone": zone, "vpc_security_group_ids": [node_sg],
                                   "arn": f"arn:aws:ec2:us-east-1:123456789012:instance/{node}"})
        for node, zone in zip(nodes, ZONES)]
    resources += [
        _resource("aws_eip", {"allocation_id": vip, "instance": nodes[0], "tags": {"harbor-ha:vip": "harbor"}}),
        _resource("aws_security_group", {"id": lb_sg, "name": "lb", "ingress": []}),
        _resource("aws_security_group", {"id": node_sg, "name": "node", "ingress": []}),
        _resource("aws_vpc_security_group_ingress_rule", {
            "security_group_id": node_sg, "ip_protocol": "tcp", "from_port": 443, "to_port": 443,
            "referenced_security_group_id": lb_sg}),
        _resource("aws_s3_bucket", {"bucket": "registry", "region": "us-east-1"}),
    ]
    return {"values": {"root_module": {"resources": resources}}}, {"vip": vip, "nodes": nodes, "node_sg": node_sg}


def _failed(state: dict, live: Live) -> list[str]:
    return [c.what for c in check_state(state, live, ZONES) if not c.ok]


def test_everything_passes_as_built(deployed, live):
    state, _ = deployed
    checks = check_state(state, live, ZONES)
    assert [c.what for c in checks if not c.ok] == []
    kinds = " ".join(c.what for c in checks)
    for expected in ("is running", "requires IMDSv2", "is in AZ", "VIP", "is versioned", "SSE-KMS",
                     "blocks all public access", "admits exactly its declared ingress"):
        assert expected in kinds


def test_changes_behind_the_back_fail(deployed, live):
    state, ids = deployed
    ec2, s3 = live("ec2"), live("s3")
    # keepalived moving the VIP to the peer node is by design
    ec2.associate_address(AllocationId=ids["vip"], InstanceId=ids["nodes"][1], AllowReassociation=True)
    assert _failed(state, live) == []

    association = ec2.describe_addresses(AllocationIds=[ids["vip"]])["Addresses"][0]["AssociationId"]
    ec2.disassociate_address(AssociationId=association)
    s3.put_bucket_versioning(Bucket="registry", VersioningConfiguration={"Status": "Suspended"})
    ec2.authorize_security_group_ingress(GroupId=ids["node_sg"], IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    failed = _failed(state, live)
    assert any("VIP" in f and "associated with nothing" in f for f in failed), failed
    assert any("is versioned (Suspended)" in f for f in failed), failed
    assert any("unexpected: tcp 22-22 from 0.0.0.0/0" in f for f in failed), failed


def test_a_deleted_resource_is_a_failed_check(live):
    state = {"values": {"root_module": {"resources": [
        _resource("aws_db_instance", {"id": "db-gone", "identifier": "gone"})]}}}
    checks = check_state(state, live, ZONES)
    assert len(checks) == 1 and not checks[0].ok and "aws_db_instance db-gone can be read" in checks[0].what


def test_intent_counts_what_the_settings_ask_for_in_the_target(live):
    """A half-applied active-standby (state or not): the Harbor servers, the VIP, database and cache the
    settings ask for are looked up in the target by the stack's tags; what is missing fails."""
    from harbor_ha.settings import HarborHaSettings
    from harbor_ha.verify import Intent, check_intent

    ec2 = live("ec2")
    tags = [{"Key": "harbor-ha:deployment", "Value": "intent"}, {"Key": "harbor-ha:stack", "Value": "active-standby"},
            {"Key": "harbor-ha:role", "Value": "harbor"}, {"Key": "harbor-ha:vip", "Value": "intent-as"}]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2,
                      TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
    checks = {c.what: c.ok for c in check_intent(Intent.of(HarborHaSettings(name="intent"), "active-standby"), live,
                                                   deployment="intent", stack="active-standby")}
    assert checks["active-standby has 2 running Harbor servers (the target holds 2)"]
    assert checks["active-standby has 2 running VIP holders (keepalived peers) (the target holds 2)"]
    failed = [what for what, ok in checks.items() if not ok]
    assert failed == ["active-standby has 1 VIP Elastic IPs (the target holds 0)",
                      "active-standby has 1 databases (the target holds 0)",
                      "active-standby has 1 Redis replication groups (the target holds 0)"]


def test_a_log_bucket_is_held_to_the_sse_s3_it_was_built_with(live):
    s3 = live("s3")
    s3.create_bucket(Bucket="logs")
    s3.put_bucket_versioning(Bucket="logs", VersioningConfiguration={"Status": "Enabled"})
    s3.put_public_access_block(Bucket="logs", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    sse = {"bucket": "logs", "rule": [{"apply_server_side_encryption_by_default": [{"sse_algorithm": "AES256"}]}]}
    state = {"values": {"root_module": {"resources": [
        _resource("aws_s3_bucket", {"bucket": "logs", "region": "us-east-1"}),
        _resource("aws_s3_bucket_server_side_encryption_configuration", sse)]}}}
    s3.put_bucket_encryption(Bucket="logs", ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    assert _failed(state, live) == []
    s3.delete_bucket_encryption(Bucket="logs")
    assert any("logs is encrypted with SSE-S3" in f for f in _failed(state, live))


def test_the_operator_modules_load_without_the_jsii_runtime():
    """verify, deploy and the CLI read harbor-ha's tags and rules from plain modules: importing them starts no
    cdktf, so a check of a deployment (its working directory already made) costs no node process."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, harbor_ha.verify, harbor_ha.deploy, harbor_ha.cli, harbor_ha.rolling; "
         "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('jsii', 'cdktf', "
         "'cdktf_cdktf_provider_aws', 'constructs')} | ({'harbor_ha.aws'} & set(sys.modules))))"],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(PROJECT)})
    assert loaded.stdout.strip() == "[]", loaded.stdout
