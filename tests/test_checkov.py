"""Security posture of the synthesized stacks, judged by checkov with the project's .checkov.yaml: no failed
check except the ones .checkov.yaml skips, each with its reason. Every stack that exists is checked, built for
the ``aws`` target: what reaches production (the local target differs only where the emulator falls short)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks import stack_class

from conftest import PROJECT, CdktfTesting, require_tool

sys.path.insert(0, str(PROJECT / "benchmarks"))
from synth_all import existing_stacks  # noqa: E402

CONFIG = PROJECT / ".checkov.yaml"

# Findings in constructs that are to be fixed there (check id -> where). Each one still reported keeps the
# test green; one no longer reported fails it, so that the entry is removed with the fix. Not suppressions:
# checkov itself still reports them.
OPEN_FINDINGS = {
    "CKV_AWS_353": "database: RDS Performance Insights (encrypted with the database key)",
    "CKV_AWS_118": "database: RDS enhanced monitoring (needs a monitoring role)",
    "CKV_AWS_18": "storage: S3 server access logging of the image bucket",
    "CKV2_AWS_11": "network: VPC flow logs",
    "CKV2_AWS_64": "data_tier.customer_key and harbor_fleet: an explicit KMS key policy",
    "CKV_AWS_135": "harbor_host and lb_pair: ebs_optimized on the instances",
    "CKV_AWS_126": "lb_pair: detailed monitoring of the directors (the Harbor hosts have it on aws)",
    "CKV_AWS_260": "lb_pair and harbor_host: port 80 open to 0.0.0.0/0 (plain HTTP: redirect only, or closed?)",
    "CKV_AWS_88": "harbor_host: public IPs on the Harbor instances of active-standby, master-slaves, master-master",
    "CKV2_AWS_38": "master_slaves: DNSSEC signing of the public Route 53 zone (or make the zone private)",
    "CKV2_AWS_39": "master_slaves: DNS query logging of the Route 53 zone",
}

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def synthesized(app, tmp_path_factory):
    """Directory per checked stack, each holding its cdk.tf.json."""
    root = tmp_path_factory.mktemp("checkov")
    stacks = existing_stacks()
    assert stacks, "no solution stack to check"
    settings = HarborHaSettings(stacks=tuple(stacks), target="aws")
    built = {name: stack_class(name)(app, f"checkov-{name}", settings=settings) for name in stacks}
    for name, stack in built.items():
        (root / name).mkdir()
        (root / name / "cdk.tf.json").write_text(CdktfTesting.synth(stack))
    return root, sorted(built)


@pytest.fixture(scope="module")
def failed_checks(synthesized) -> dict[str, list[str]]:
    """Failed check id -> the stacks and resources it failed for, over every checked stack."""
    checkov = require_tool("checkov")
    root, names = synthesized
    files = [arg for name in names for arg in ("-f", f"{name}/cdk.tf.json")]
    # Run in root, so that checkov names each file "/<stack>/cdk.tf.json".
    done = subprocess.run([checkov, "--config-file", str(CONFIG), *files, "-o", "json"], cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), f"checkov failed:\n{done.stderr[-4000:]}"
    report = json.loads(done.stdout)
    assert report["check_type"] == "terraform_json", report.get("check_type")
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["passed"] > 50 * len(names), report["summary"]
    failed: dict[str, list[str]] = {}
    for check in report["results"]["failed_checks"]:
        stack = check["file_path"].strip("/").split("/")[0]
        failed.setdefault(check["check_id"], []).append(f"{stack}: {check['resource']}")
    return failed


def test_no_failed_check_beyond_the_open_findings(failed_checks):
    unexpected = {check: where for check, where in failed_checks.items() if check not in OPEN_FINDINGS}
    assert not unexpected, "checkov findings:\n" + json.dumps(unexpected, indent=2)


def test_open_findings_are_still_open(failed_checks):
    fixed = sorted(set(OPEN_FINDINGS) - set(failed_checks))
    assert not fixed, f"fixed, remove from OPEN_FINDINGS: {fixed}"


def test_every_skipped_check_carries_its_reason():
    config = yaml.safe_load(CONFIG.read_text())
    skipped = config["skip-check"]
    assert skipped and len(skipped) == len(set(skipped))
    lines = CONFIG.read_text().splitlines()
    for check in skipped:
        (at,) = [i for i, line in enumerate(lines) if re.fullmatch(rf"\s*- {check}\s*", line)]
        assert lines[at - 1].strip().startswith("# ") and len(lines[at - 1].strip()) > 20, (
            f"{check} in .checkov.yaml needs a comment saying why it is skipped")
    assert not set(skipped) & set(OPEN_FINDINGS), "a check is either skipped by design or open, not both"
