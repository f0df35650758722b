"""Shared test fixtures: one cdktf App (one jsii process) for the whole session, synth helpers, and
tool lookups that fail under CI=true instead of skipping."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from harbor_ha.aws import Testing as CdktfTesting  # not named Test*: pytest would collect it
# The instance-metadata stand-in and the loopback HTTP helpers live with the failover drill, which uses them too.
from harbor_ha.drill.standins import ImdsStandIn as FakeImds, QuietHandler, loopback_server  # noqa: F401
from harbor_ha.local.emulator import ENDPOINT_ENV
from harbor_ha.settings import HarborHaSettings

PROJECT = Path(__file__).resolve().parent.parent
REFERENCE = PROJECT.parent / "shared" / "reference" / "harbor"
# Fixed so snapshots do not depend on which free port an emulator got.
TEST_LOCAL_ENDPOINT = "http://127.0.0.1:4566"
IN_CI = os.environ.get("CI") == "true"


def require_tool(name: str) -> str:
    """Path of an executable; a missing one fails the test under CI=true and skips it elsewhere."""
    path = shutil.which(name) or _project_tool(name)
    if path:
        return path
    message = f"{name} is not installed (.ci/run installs it)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _project_tool(name: str) -> str | None:
    candidate = PROJECT / ".tools" / "bin" / name
    return str(candidate) if candidate.exists() else None


def reference_file(name: str) -> Path:
    """A file of ../shared/reference/harbor; its absence fails under CI=true."""
    path = REFERENCE / name
    if not path.is_file():
        if IN_CI:
            pytest.fail(f"{path} is missing")
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(autouse=True)
def _local_endpoint(monkeypatch):
    monkeypatch.setenv(ENDPOINT_ENV, TEST_LOCAL_ENDPOINT)


@pytest.fixture(scope="session")
def app():
    return CdktfTesting.app()


@pytest.fixture
def settings() -> HarborHaSettings:
    return HarborHaSettings()


@pytest.fixture(scope="session")
def synth():
    """``synth(stack) -> dict``: the parsed Terraform JSON of one stack."""
    def _synth(stack) -> dict:
        return json.loads(CdktfTesting.synth(stack))
    return _synth


_ids: set[str] = set()


@pytest.fixture
def stack_id(request) -> str:
    """A stack id unique in the session App, stable across runs (it names the test)."""
    base = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:60]
    candidate, n = base, 1
    while candidate in _ids:
        n += 1
        candidate = f"{base}-{n}"
    _ids.add(candidate)
    return candidate


def resources(doc: dict, kind: str) -> dict:
    """All resources of one Terraform type in a synthesized stack, by name."""
    return doc.get("resource", {}).get(kind, {})


def written_once_from_a_generator(doc: dict, version: dict) -> dict:
    """The ephemeral password generator whose value ``version`` (a secret version) writes once, write-only,
    keeping a value written before as a plain secret_string; asserts that shape."""
    match = re.fullmatch(r"\$\{ephemeral\.aws_secretsmanager_random_password\.([^.]+)\.random_password\}",
                         version["secret_string_wo"])
    assert match and "secret_string" not in version, version
    assert version["secret_string_wo_version"] == 1
    assert version["lifecycle"] == {"ignore_changes": ["secret_string", "secret_string_wo_version"]}
    return doc["ephemeral"]["aws_secretsmanager_random_password"][match[1]]


def image_buckets(doc: dict) -> dict:
    """The S3 buckets of a synthesized stack but the log buckets (``<name>-logs-...``), by name."""
    return {name: bucket for name, bucket in resources(doc, "aws_s3_bucket").items()
            if "-logs-" not in bucket.get("bucket_prefix", "")}


MOCK_REGION = "us-east-1"


class MotoClients:
    """Stands for ``harbor_ha.verify.Live``: boto3 clients of moto's in-process mock, and its target's region."""

    target = SimpleNamespace(region=MOCK_REGION)

    def __call__(self, service: str, region: str | None = None):
        import boto3

        return boto3.client(service, region_name=region or MOCK_REGION)


@pytest.fixture
def mocked_aws(monkeypatch):
    """``MotoClients`` inside moto's in-process mock of AWS."""
    from moto import mock_aws

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        yield MotoClients()


@pytest.fixture(scope="module")
def moto_endpoint():
    """URL of a moto server on loopback, fresh for each test module."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def imds_url():
    """The URL of a FakeImds on loopback (set ``FakeImds.metadata`` before use)."""
    with loopback_server(FakeImds) as url:
        yield url


def terraform_validate(workdir: Path, text: str, monkeypatch) -> None:
    """``terraform init`` + ``validate`` of synthesized ``text`` in ``workdir`` through python-terraform, with
    the real provider schema: valid and without warnings."""
    from python_terraform import IsFlagged, Terraform

    from harbor_ha.terraform_config import terraform_env

    terraform = require_tool("terraform")
    (workdir / "cdk.tf.json").write_text(text)
    # python-terraform 0.10.1 passes os.environ to terraform and has no env parameter.
    for key, value in terraform_env().items():
        monkeypatch.setenv(key, value)
    tf = Terraform(working_dir=str(workdir), terraform_bin_path=terraform)
    code, out, err = tf.init(capture_output=True, backend=False)
    assert code == 0, f"terraform init failed:\n{out}\n{err}"
    code, out, err = tf.cmd("validate", json=IsFlagged, no_color=IsFlagged)
    result = json.loads(out)
    assert code == 0 and result["valid"], json.dumps(result["diagnostics"], indent=2) + err
    assert result["warning_count"] == 0, json.dumps(result["diagnostics"], indent=2)


@pytest.fixture(scope="session")
def default_docs(app) -> dict[str, dict]:
    """The Terraform JSON of every stack at the default settings (what the docs show), built once per session."""
    from harbor_ha.settings import STACK_NAMES
    from harbor_ha.stacks import stack_class

    settings = HarborHaSettings()
    return {name: json.loads(CdktfTesting.synth(stack_class(name)(
        app, f"defaults-{name}", settings=settings, local_endpoint=TEST_LOCAL_ENDPOINT))) for name in STACK_NAMES}


TARGETS = ("local", "aws")


@pytest.fixture(scope="session")
def synthesized_stacks(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """(target, stack) -> the ``cdk.tf.json`` of every existing stack, synthesized for both targets the way
    ``cdktf synth`` writes it (an App of its own per target, in a subprocess: the session App stays the only
    one here, and ``Testing.synth`` would drop the resources' ``//`` comments)."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("synthesized")
    files = {}
    for target in TARGETS:
        done = subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "synth_all.py"), str(root / target),
                               "--target", target], capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": str(PROJECT)})
        assert done.returncode == 0, done.stderr[-3000:]
        for stack in json.loads(done.stdout.splitlines()[-1])["stacks"]:
            files[(target, stack)] = root / target / "stacks" / stack / "cdk.tf.json"
    return files


def _allowed_seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    return float(marker.args[0]) if marker and marker.args else 0.0


# A test allowed this long is a deploy or a boot of many minutes (its timeout marker); the rest take seconds.
LONG_SECONDS = 1000


def pytest_collection_modifyitems(config, items):
    """An order that keeps CI's four workers (scripts/test) evenly busy. xdist (--dist loadgroup) hands out the
    groups first (xdist_group: the installer's node boots, the drills), then the tests in this order, and
    queues one more test behind the one each worker runs: a long test queued behind another long one waits
    for it (the interrupt e2e waited 29 minutes behind the rolling e2e). So: the longest tests, one per
    worker the groups leave free, then quick ones to be queued behind them, then each remaining long test
    followed by a quick one, then the rest."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    groups = {mark.args[0] for item in items for mark in item.iter_markers("xdist_group")}
    longest_first = sorted(items, key=lambda item: -_allowed_seconds(item))
    long = [item for item in longest_first
            if _allowed_seconds(item) >= LONG_SECONDS and not item.get_closest_marker("xdist_group")]
    chosen = set(long)
    quick = [item for item in longest_first if item not in chosen][::-1]  # the unmarked ones first
    free = max(workers - len(groups), 1)
    ordered = long[:free] + quick[:free]
    rest = quick[free:]
    for item in long[free:]:
        ordered.append(item)
        if rest:
            ordered.append(rest.pop(0))
    items[:] = ordered + rest[::-1]
