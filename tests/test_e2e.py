"""End to end on the local AWS target, with the harbor-ha command as an operator runs it: the four stacks of
one deployment (default settings, name ``harbor``) live on one emulator at once. One deploy follows a failed
apply. Each stack then verifies, holds no plaintext secret in its Terraform state, plans empty, survives a
keepalived-style failover of its VIP (the plan stays empty) and has verify catch a change made behind its back.
The stacks go one by one: after each ``down`` every remaining stack still verifies and plans empty, the target
holds nothing of the destroyed one but what AWS keeps, and at the end nothing at all.

One deployment of each stack for all of it: an apply costs minutes of CI, and four stacks side by side are the
case that shows no stack takes a name of another (they used to collide on the database, the cache subnet group
and KMS aliases)."""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from harbor_ha.attached_orphans import unsaved_attached
from harbor_ha.inventory import stack_inventory
from harbor_ha.settings import STACK_NAMES
from harbor_ha.stack_run import StackRun
from harbor_ha.target import terraform_state_dir
from harbor_ha.verify import Live, resources_by_type, same_role, state_resources, vip_associations, vip_holder
from e2e_helpers import client, emulated_project, outputs, run, start, use_project, wait_for_line
from secret_scan import find_secrets, state_without_the_redis_token

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

# The failed-then-re-run apply is shown once, on the stack without a database (RDS waiters make it slow).
FAILED_APPLY_STACK = "master-slaves"
# Stacks whose VIP keepalived moves between two nodes.
VIP_STACKS = ("active-active", "active-standby")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with emulated_project(tmp_path_factory.mktemp("e2e")) as project:
        yield project


def _take_a_kms_alias(root, stack: str, kms) -> str:
    """Make the next apply fail part-way: take the name of one of the stack's KMS aliases."""
    workdir = StackRun(stack, project_dir=root).synth()
    doc = json.loads((workdir / "cdk.tf.json").read_text())
    names = [r["name"] for r in doc.get("resource", {}).get("aws_kms_alias", {}).values()
             if isinstance(r.get("name"), str) and "${" not in r["name"]]
    assert names, f"{stack} has no KMS alias with a fixed name to collide with"
    kms.create_alias(AliasName=names[-1], TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    return names[-1]


def _secrets_in_state(root, stack: str, endpoint: str, stack_outputs: dict) -> list[str]:
    """Plaintext secrets in the stack's Terraform state, by pattern and by every secret value the emulator
    holds, apart from the Redis token (marked sensitive, the one secret AWS leaves no other way to hold)."""
    state = json.loads((terraform_state_dir(root, "local") / f"{stack}.tfstate").read_text())
    redis = [stack_outputs["redis_auth_secret_arn"]] if "redis_auth_secret_arn" in stack_outputs else []
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


def _succeeds(root, endpoint: str, *args: str) -> str:
    code, out, err = run(root, endpoint, *args)
    assert code == 0, f"harbor-ha {' '.join(args)}:\n{out[-4000:]}{err}"
    return out


def _deploy_side_by_side(root, endpoint: str) -> None:
    """``harbor-ha up`` of every stack, the applies overlapping; the first up of FAILED_APPLY_STACK fails on a
    taken KMS alias and its next up completes."""
    kms = client(endpoint, "kms")
    taken = _take_a_kms_alias(root, FAILED_APPLY_STACK, kms)
    ups = {}
    for stack in STACK_NAMES:
        ups[stack] = start(root, endpoint, "up", stack)
        # Synth and init one at a time (terraform's plugin cache is not safe for concurrent inits); applies overlap.
        wait_for_line(root / f"up-{stack}.out", f"apply {stack}: planned ")
    assert ups[FAILED_APPLY_STACK].wait(timeout=900) == 1
    out, err = outputs(root, "up", FAILED_APPLY_STACK)
    assert "AlreadyExists" in out + err and "Traceback" not in err, out[-4000:] + err
    kms.delete_alias(AliasName=taken)
    ups[FAILED_APPLY_STACK] = start(root, endpoint, "up", FAILED_APPLY_STACK)
    for stack, up in ups.items():
        up.wait(timeout=1800)
        out, err = outputs(root, "up", stack)
        assert up.returncode == 0, f"{stack}:\n{out[-4000:]}{err}"


def _a_deployed_stack_holds(root, endpoint: str, stack: str) -> None:
    """What one deployed stack must hold, from verify to a failover and a change behind its back."""
    _succeeds(root, endpoint, "verify", stack)
    stack_run = StackRun(stack, project_dir=root, stream=False).ready()
    assert _secrets_in_state(root, stack, endpoint, stack_run.outputs()) == [], "a plaintext secret in the state"
    _succeeds(root, endpoint, "plan", stack)  # exit 0: no changes, 2: changes
    state = stack_run.state()
    assert unsaved_attached(Live(stack_run.target), state) == [], "a rule or route the state lacks"
    if stack in VIP_STACKS:
        assert _failover(endpoint, state), "a VIP stack has a VIP to move"
        _succeeds(root, endpoint, "plan", stack)  # terraform must not want the VIP back
        _succeeds(root, endpoint, "verify", stack)
    s3 = client(endpoint, "s3")
    buckets = [r["values"]["bucket"] for r in state_resources(state) if r["type"] == "aws_s3_bucket"]
    for status in ("Suspended", "Enabled"):
        for bucket in buckets:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
        code, out, err = run(root, endpoint, "verify", stack)
        if status == "Suspended" and buckets:
            assert code != 0 and "versioned" in out + err, f"verify misses a bucket's versioning:\n{out}{err}"
    assert code == 0, f"verify after versioning was restored:\n{out}{err}"


def _in_parallel(check, stacks) -> None:
    with ThreadPoolExecutor(max_workers=len(stacks) or 1) as pool:
        for done in [pool.submit(check, stack) for stack in stacks]:
            done.result()


def test_four_stacks_live_side_by_side_and_go_one_by_one(project, monkeypatch):
    root, endpoint = project
    use_project(monkeypatch, project)
    _deploy_side_by_side(root, endpoint)
    _in_parallel(lambda stack: _a_deployed_stack_holds(root, endpoint, stack), STACK_NAMES)

    remaining = list(STACK_NAMES)
    while remaining:
        gone = remaining.pop(0)
        _succeeds(root, endpoint, "down", gone)
        left = stack_inventory(StackRun(gone, project_dir=root, stream=False)).all()
        assert [f.describe() for f in left if not f.kept] == [], gone

        def still_there(stack: str) -> None:
            _succeeds(root, endpoint, "verify", stack)
            _succeeds(root, endpoint, "plan", stack)
        _in_parallel(still_there, remaining)
    assert _nothing_left(endpoint) == []
