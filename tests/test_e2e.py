"""End to end on the local AWS target, for every stack whose module exists: deploy (once after a failed apply),
verify, idempotency, a keepalived-style failover, verify catching changes made behind its back, and a
destroy that leaves nothing behind. One fresh emulator per module, state in a temporary directory."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import time

import pytest

from harbor_ha import deploy
from harbor_ha.stack_run import DeployError, StackRun
from harbor_ha.stacks import STACK_CLASSES
from harbor_ha.target import terraform_state_dir
from harbor_ha.verify import resources_by_type, same_role, state_resources, verify, vip_associations, vip_holder
from e2e_helpers import client, emulated_project, use_project
from secret_scan import find_secrets, state_without_the_redis_token

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

AVAILABLE = [name for name, target in STACK_CLASSES.items()
             if importlib.util.find_spec(target.split(":")[0]) is not None]
# Deploy time budget of one stack on the local target (RDS waiters ~80 s, S3 lifecycle ~55 s).
DEPLOY_BUDGET_S = 240
# The failed-then-re-run apply is shown once, on the stack without a database (RDS waiters make it slow).
FAILED_APPLY_STACK = "master-slaves"
# Stacks whose VIP keepalived moves between two nodes.
VIP_STACKS = ("active-active", "active-standby")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with emulated_project(tmp_path_factory.mktemp("e2e")) as project:
        yield project


@pytest.fixture(autouse=True)
def _on_the_project(project, monkeypatch):
    use_project(monkeypatch, project)


def _take_a_kms_alias(root, stack: str, kms) -> str:
    """Make the next apply fail part-way: take the name of one of the stack's KMS aliases."""
    doc = json.loads((root / "cdktf.out" / "stacks" / stack / "cdk.tf.json").read_text())
    names = [r["name"] for r in doc.get("resource", {}).get("aws_kms_alias", {}).values()
             if isinstance(r.get("name"), str) and "${" not in r["name"]]
    assert names, f"{stack} has no KMS alias with a fixed name to collide with"
    kms.create_alias(AliasName=names[-1], TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    return names[-1]


def _secrets_in_state(root, stack: str, endpoint: str, outputs: dict) -> list[str]:
    """Plaintext secrets in the stack's Terraform state, by pattern and by every secret value the emulator
    holds, apart from the Redis token (marked sensitive, the one secret AWS leaves no other way to hold)."""
    state = json.loads((terraform_state_dir(root, "local") / f"{stack}.tfstate").read_text())
    redis = [outputs["redis_auth_secret_arn"]] if "redis_auth_secret_arn" in outputs else []
    known, tokens = [], []
    for region in ("us-east-1", "us-west-2"):
        secrets = client(endpoint, "secretsmanager", region)
        for secret in secrets.list_secrets()["SecretList"]:
            with contextlib.suppress(secrets.exceptions.ResourceNotFoundException):
                value = secrets.get_secret_value(SecretId=secret["ARN"])["SecretString"]
                (tokens if secret["ARN"] in redis else known).append(value)
    assert known, "the deployment holds secrets (admin password, database) to look for"
    assert len(tokens) == len(redis), "the Redis token is read back too"
    rest, problems = state_without_the_redis_token(state, tokens)
    return problems + find_secrets(rest, known=known)


def _failover(endpoint: str, state: dict) -> list[str]:
    """Move every VIP to a peer of its holder, as keepalived's notify script would."""
    ec2 = client(endpoint, "ec2")
    by_type = resources_by_type(state)
    moved = []
    for allocation, intended in vip_associations(by_type):
        _, holder = vip_holder(ec2, allocation)
        peer = sorted(same_role(intended, by_type) - {holder})[0]
        ec2.associate_address(AllocationId=allocation, InstanceId=peer, AllowReassociation=True)
        assert vip_holder(ec2, allocation)[1] == peer
        moved.append(peer)
    return moved


def _nothing_left(endpoint: str) -> list[str]:
    ec2, left = client(endpoint, "ec2"), []
    left += [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
             if i["State"]["Name"] not in ("terminated", "shutting-down")]
    left += [a["PublicIp"] for a in ec2.describe_addresses()["Addresses"]]
    left += [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")]
    left += [d["DBInstanceIdentifier"] for d in client(endpoint, "rds").describe_db_instances()["DBInstances"]]
    left += [g["ReplicationGroupId"] for g in
             client(endpoint, "elasticache").describe_replication_groups()["ReplicationGroups"]]
    left += [b["Name"] for b in client(endpoint, "s3").list_buckets()["Buckets"]]
    left += [r["RoleName"] for r in client(endpoint, "iam").list_roles()["Roles"]]
    return left


@pytest.mark.parametrize("stack", AVAILABLE)
def test_stack_lifecycle(stack, project):
    root, endpoint = project
    timings: dict[str, float] = {}

    def timed(step, call, *args, **kwargs):
        start = time.monotonic()
        try:
            return call(stack, *args, project_dir=root, **kwargs)
        finally:
            timings[step] = round(time.monotonic() - start, 1)

    if stack == FAILED_APPLY_STACK:
        kms = client(endpoint, "kms")
        StackRun(stack, project_dir=root).synth()
        taken = _take_a_kms_alias(root, stack, kms)
        with pytest.raises(DeployError):
            timed("failed apply", deploy.deploy)
        kms.delete_alias(AliasName=taken)
    outputs = timed("deploy", deploy.deploy)
    assert timings["deploy"] < DEPLOY_BUDGET_S
    assert outputs

    assert all(c.ok for c in timed("verify", verify)), "verify failed on a fresh deployment"
    assert _secrets_in_state(root, stack, endpoint, outputs) == [], "a plaintext secret in the Terraform state"
    assert timed("plan", deploy.plan_is_empty, stream=True), "a plan right after apply wants changes"

    state = StackRun(stack, project_dir=root).ready().state()
    if stack in VIP_STACKS:
        assert _failover(endpoint, state), "a VIP stack has a VIP to move"
        assert timed("plan after failover", deploy.plan_is_empty, stream=True), "terraform wants the VIP back after a failover"
        assert all(c.ok for c in verify(stack, project_dir=root)), "verify fails after a failover"

    buckets = [r["values"]["bucket"] for r in state_resources(state) if r["type"] == "aws_s3_bucket"]
    for bucket in buckets:
        client(endpoint, "s3").put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    if buckets:
        failed = [c.what for c in verify(stack, project_dir=root) if not c.ok]
        assert any("versioned" in what for what in failed), failed

    timed("destroy", deploy.destroy)
    assert _nothing_left(endpoint) == []
    print(f"\n{stack} timings (s): {timings}")
