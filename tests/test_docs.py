"""The guides in docs/: the construct reference is the code's, the state-backend program of the AWS guide runs
and writes the backend it describes, and every relative link points at a file that exists."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from conftest import PROJECT
from harbor_ha.reference import construct_reference
from harbor_ha.rolling import Member, RollOptions, Roller

DOCS = PROJECT / "docs"


def test_construct_reference_is_generated_from_the_code():
    assert (DOCS / "constructs.md").read_text() == construct_reference(), \
        "docs/constructs.md is stale: run 'python -m harbor_ha.reference > docs/constructs.md'"


def test_construct_reference_names_every_construct_class():
    text = construct_reference()
    for name in ("HarborNetwork", "StaticIps", "LoadBalancerPair", "HarborFleet", "StandaloneHarborNode",
                 "RegistryStorage", "HarborDatabase", "HarborCache", "SharedData", "HarborReplication"):
        assert f"## {name}\n" in text and f"import {name}" in text


def test_the_state_backend_program_of_the_aws_guide_writes_an_encrypted_locked_s3_backend(tmp_path):
    guide = (DOCS / "deploy-to-aws.md").read_text()
    [program] = [block for block in re.findall(r"```python\n(.*?)```", guide, re.S) if "backend" in block]
    (tmp_path / "main.py").write_text(program)
    env = {**os.environ, "HARBOR_HA_STACKS": "active-standby", "CDKTF_OUTDIR": str(tmp_path / "out")}
    result = subprocess.run([sys.executable, "main.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads((tmp_path / "out" / "stacks" / "active-standby" / "cdk.tf.json").read_text())
    assert doc["terraform"]["backend"] == {"s3": {
        "bucket": "my-harbor-state", "key": "harbor-ha/active-standby.tfstate", "region": "us-east-1",
        "encrypt": True, "use_lockfile": True}}


def test_relative_links_of_the_docs_and_readme_resolve():
    pages = [PROJECT / "README.md", *DOCS.glob("*.md")]
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_readme_links_every_guide():
    readme = (PROJECT / "README.md").read_text()
    for guide in ("docs/deploy-to-aws.md", "docs/air-gapped.md", "docs/troubleshooting.md", "docs/constructs.md",
                  "docs/scale-and-upgrade.md"):
        assert f"]({guide})" in readme


def test_the_scale_guide_states_the_roll_timeouts_of_the_code():
    guide = " ".join((DOCS / "scale-and-upgrade.md").read_text().split())
    options = RollOptions()
    assert f"{options.health_timeout:.0f} s for a member to report healthy" in guide
    assert f"{options.ack_timeout:.0f} s for both load balancers to apply a pool change" in guide
    assert f"{options.drain_seconds:.0f} s for open connections" in guide


def test_the_scale_guide_shows_what_a_stopped_roll_says():
    guide = (DOCS / "scale-and-upgrade.md").read_text()
    [example] = [block for block in re.findall(r"```[a-z]*\n(.*?)```", guide, re.S) if "the roll stopped" in block]
    member = Member("aws_instance.h1", "harbor-aa-harbor-1", "harbor", "replace")
    said = Roller.stopped("harbor-aa-harbor-1 to report healthy at 2.15.2", RollOptions().health_timeout,
                          member, [Member("aws_instance.h2", "harbor-aa-harbor-2", "harbor", "replace")])
    assert " ".join(example.split()) == f"harbor-ha: {said}"
