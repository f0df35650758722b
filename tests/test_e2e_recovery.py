"""End to end on the local AWS target, active-standby (database and cache: the slow resources an apply is most
likely to die in): terraform is killed (SIGKILL) while the database is being created. harbor-ha names the
signal. The state file is cut short, as a kill mid-write leaves it; the next ``up`` keeps it aside, imports
what the dead apply made without saving it (named resources, and the rules, routes and associations found
through their groups and tables) and completes; the stack verifies.
Then a Harbor node's boot is played: the real shared-secrets.sh, run with bash against the emulator with the
environment the node gets, creates Harbor's shared secret. ``down`` removes it with the stack, and an
inventory of the target by the deployment's tags and names finds nothing but what AWS keeps by design (KMS
keys pending deletion, secrets scheduled for deletion, terminated instances, deleted NAT gateways and VPC
endpoints still listed), which is printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harbor_ha.attached_orphans import unsaved_attached
from harbor_ha.stack_run import StackRun
from harbor_ha.harbor_boot import boot_script
from harbor_ha.inventory import stack_inventory
from harbor_ha.target import LOCAL_ACCESS_KEY
from harbor_ha.verify import Live, resources_by_type
from conftest import require_tool
from e2e_helpers import client, emulated_project, outputs, processes_in, run, start, use_project

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2000)]

STACK = "active-standby"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with emulated_project(tmp_path_factory.mktemp("recovery")) as project:
        yield project


def _terraform_child(pid: int) -> int:
    for proc in Path("/proc").iterdir():
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if proc.name.isdigit() and int(fields[1]) == pid and b"terraform" in (proc / "cmdline").read_bytes():
                return int(proc.name)
        except (OSError, IndexError):
            continue
    raise AssertionError(f"harbor-ha {pid} runs no terraform")


def wait_for_database(endpoint: str, timeout: float = 900) -> None:
    rds = client(endpoint, "rds")
    deadline = time.monotonic() + timeout
    while not rds.describe_db_instances()["DBInstances"]:
        assert time.monotonic() < deadline, "the apply never created its database"
        time.sleep(1)


def _play_first_node_boot(root: Path, endpoint: str, workdir: Path) -> str:
    """Run the node's shared-secrets.sh as the first node's boot does, against the emulator; returns the
    secret's name."""
    require_tool("openssl")
    state = StackRun(STACK, project_dir=root, stream=False).ready().state()
    by_type = resources_by_type(state)
    key = next(k for k in by_type["aws_kms_key"] if k["description"].endswith(": Harbor secrets"))
    name = f"harbor-ha/{StackRun(STACK, project_dir=root).settings.resource_prefix}/shared-secrets-{key['key_id']}"
    script = workdir / "shared-secrets.sh"
    script.write_text(boot_script("shared-secrets.sh").content)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # venv's aws
           "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": LOCAL_ACCESS_KEY,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
           "SHARED_SECRET_NAME": name, "SHARED_SECRET_KMS_KEY": key["arn"], "HARBOR_HOSTNAME": "192.0.2.10",
           "HARBOR_SECRET_DIR": str(workdir / "secret"), "HARBOR_HA_STATE_DIR": str(workdir / "etc")}
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return name


def test_killed_apply_is_recovered_and_down_leaves_only_what_aws_keeps(project, tmp_path, monkeypatch):
    root, endpoint = project
    use_project(monkeypatch, project)
    up = start(root, endpoint, "up", STACK)
    # The database exists and terraform waits for it (about 80 s on the emulator): not yet in the state.
    wait_for_database(endpoint)
    os.kill(_terraform_child(up.pid), signal.SIGKILL)
    assert up.wait(timeout=120) == 1
    _, err = outputs(root, "up", STACK)
    assert "was killed by SIGKILL" in err and f"'harbor-ha up {STACK}'" in err and "Traceback" not in err, err
    assert not [p for p in processes_in(root) if "terraform apply" in p]

    # The worst a kill can leave (seen in CI): the state file cut short mid-write (terraform's local backend
    # writes it in place). Whether it was is a matter of timing: cut it here, so the next up always finds it.
    stack_run = StackRun(STACK, project_dir=root, stream=False)
    written = stack_run.state_file.read_bytes() if stack_run.state_file.exists() else b""
    stack_run.state_file.write_bytes(written[:len(written) // 2] or b'{\n  "version": 4,\n  "resources": [')

    code, out, err = run(root, endpoint, "up", STACK)
    assert code == 0, out[-4000:] + err
    assert f"the state of stack {STACK} was cut short" in out and "no earlier state to put back" in out, out[:4000]
    assert "importing aws_db_instance" in out and "importing sgr-" in out, out[:6000]
    assert unsaved_attached(Live(stack_run.target), stack_run.state()) == []
    assert list(stack_run.state_file.parent.glob(f"{STACK}.tfstate.cut-short-*")), "the cut-short state is kept"
    code, out, err = run(root, endpoint, "verify", STACK)
    assert code == 0, out + err

    secret = _play_first_node_boot(root, endpoint, tmp_path)
    assert client(endpoint, "secretsmanager").describe_secret(SecretId=secret)["Name"] == secret

    code, out, err = run(root, endpoint, "down", STACK)
    assert code == 0, out[-4000:] + err
    assert f"scheduled the deletion of {secret}" in out
    left = stack_inventory(StackRun(STACK, project_dir=root, stream=False)).all()
    print("\nkept by AWS after down:\n" + "\n".join(f"  {f.describe()}: {f.kept}" for f in left))
    assert [f.describe() for f in left if not f.kept] == []
    assert {f.kind for f in left} <= {"aws_kms_key", "aws_secretsmanager_secret", "aws_instance", "aws_nat_gateway",
                                      "aws_vpc_endpoint"}
    assert any(f.kind == "aws_secretsmanager_secret" and f.key == secret for f in left)
