"""The inventory of a stack by its tags and names, against moto: what it lists, what it leaves to other
stacks and deployments, and what it names as kept by AWS after a delete."""

from __future__ import annotations

from harbor_ha.inventory import Inventory
from conftest import MOCK_REGION as REGION


def _tags(stack: str = "active-standby", deployment: str = "harbor", name: str = "n") -> list[dict]:
    return [{"Key": "harbor-ha:deployment", "Value": deployment}, {"Key": "harbor-ha:stack", "Value": stack},
            {"Key": "Name", "Value": name}]


def _inventory(live) -> Inventory:
    return Inventory(live, deployment="harbor", stack="active-standby", prefix="harbor-as", regions=(REGION,))


def test_lists_the_stacks_resources_only(mocked_aws):
    ec2 = mocked_aws("ec2")
    ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": _tags(name="ours")}])
    ec2.create_vpc(CidrBlock="10.1.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": _tags("active-active")}])
    ec2.create_vpc(CidrBlock="10.2.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": _tags(deployment="x")}])
    subnet = ec2.create_subnet(VpcId=ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"],
                               CidrBlock="10.3.0.0/24")["Subnet"]["SubnetId"]
    ec2.create_nat_gateway(SubnetId=subnet, AllocationId=ec2.allocate_address(Domain="vpc")["AllocationId"],
                           TagSpecifications=[{"ResourceType": "natgateway", "Tags": _tags("active-active")}])
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20, "DeleteOnTermination": True}}],
        TagSpecifications=[{"ResourceType": kind, "Tags": _tags(name="node")} for kind in ("instance", "volume")])
    found = {(f.kind, f.key) for f in _inventory(mocked_aws).all()}
    assert found == {("aws_vpc", "ours"), ("aws_instance", "node")}  # the root volume is part of the instance


def test_names_what_aws_keeps_after_a_delete_and_what_nodes_made(mocked_aws):
    kms, secrets = mocked_aws("kms"), mocked_aws("secretsmanager")
    key = kms.create_key(Description="harbor-as: Harbor secrets", Tags=[
        {"TagKey": t["Key"], "TagValue": t["Value"]} for t in _tags()])["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/harbor-as-harbor", TargetKeyId=key)
    secrets.create_secret(Name=f"harbor-ha/harbor-as/shared-secrets-{key}", SecretString="{}")
    secrets.create_secret(Name="harbor-ha/harbor-as-x/shared-secrets-1", SecretString="{}")  # another deployment's
    found = {f.kind: f for f in _inventory(mocked_aws).all()}
    assert set(found) == {"aws_kms_key", "aws_kms_alias", "aws_secretsmanager_secret"}
    assert found["aws_secretsmanager_secret"].made_by_node and not found["aws_secretsmanager_secret"].kept
    assert found["aws_kms_key"].key == "harbor-as: Harbor secrets" and not found["aws_kms_key"].kept

    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=30)
    secrets.delete_secret(SecretId=f"harbor-ha/harbor-as/shared-secrets-{key}", RecoveryWindowInDays=30)
    kept = {f.kind: f.kept for f in _inventory(mocked_aws).all()}
    assert "recoverable until then" in kept["aws_kms_key"]
    assert "scheduled for deletion" in kept["aws_secretsmanager_secret"]
