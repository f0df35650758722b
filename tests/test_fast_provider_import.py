"""harbor_ha/aws.py imports the AWS provider binding module by module instead of through its package root.
Proof that this changes nothing but the cost: every stack that exists, plus a stack with one of every provider
class harbor_ha/aws.py imports, synthesizes to the same bytes both ways, while the fast way loads only the
modules it names, in Python and in jsii's node process alike.

Each mode runs benchmarks/synth_all.py in its own process: the choice is made at import time."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT

SYNTH_ALL = PROJECT / "benchmarks" / "synth_all.py"
MODES = {"fast": "0", "eager": "1"}

pytestmark = pytest.mark.timeout(1200)


def _synth(mode: str, outdir: Path, node_report: Path) -> dict:
    env = {**os.environ, "HARBOR_HA_EAGER_PROVIDER": MODES[mode], "HARBOR_HA_NODE_REPORT": str(node_report)}
    done = subprocess.run([sys.executable, str(SYNTH_ALL), str(outdir), "--coverage"], env=env, cwd=PROJECT,
                          capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, f"{mode} synth failed:\n{done.stderr[-4000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["modules"] = set(report["modules"])
    report["stderr"] = done.stderr
    report["node"] = json.loads(node_report.read_text()) if node_report.exists() else None
    return report


def _files(outdir: Path) -> dict[str, bytes]:
    return {str(path.relative_to(outdir)): path.read_bytes() for path in sorted(outdir.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[dict, dict[str, bytes]]]:
    result = {}
    for mode in MODES:
        outdir = tmp_path_factory.mktemp(mode)
        result[mode] = (_synth(mode, outdir / "out", outdir / "node-report.json"), _files(outdir / "out"))
    return result


def test_synth_output_is_byte_identical(runs):
    (fast_report, fast_files), (eager_report, eager_files) = runs["fast"], runs["eager"]
    assert fast_report["stacks"] == eager_report["stacks"]
    assert "provider-class-coverage" in fast_report["stacks"]
    assert sorted(fast_files) == sorted(eager_files)
    assert any(name.endswith("cdk.tf.json") for name in fast_files)
    for name in fast_files:
        assert fast_files[name] == eager_files[name], f"{name} differs between the fast and the eager import"


def test_coverage_stack_holds_every_imported_provider_class(runs):
    """One block per class harbor_ha/aws.py imports: a class added there is covered without editing this test."""
    _, files = runs["fast"]
    doc = json.loads(files["stacks/provider-class-coverage/cdk.tf.json"])
    blocks = sum(len(v) for v in doc.get("resource", {}).values()) + \
        sum(len(v) for v in doc.get("data", {}).values()) + len(doc["provider"]["aws"])
    report, _ = runs["fast"]
    assert blocks == report["provider_classes"] >= 40


def test_fast_mode_loads_only_the_named_modules(runs):
    """Fast: the binding's runtime module plus one module per imported class (each with its ``_private``
    helper), nothing else. Eager: the package root pulls in every resource module of the provider."""
    fast, eager = runs["fast"][0], runs["eager"][0]
    expected = {f"cdktf_cdktf_provider_aws.{name}" for name in fast["class_modules"] + ["_jsii"]}
    expected |= {f"{name}._private" for name in expected}
    assert fast["modules"] <= expected, sorted(fast["modules"] - expected)
    assert len(_resource_modules(fast["modules"])) < 100
    assert len(_resource_modules(eager["modules"])) > 2000


def test_fast_mode_node_process_loads_only_the_javascript_of_the_named_modules(runs):
    """harbor_ha/node/lazy_provider_index.js: of the provider root's 2,135 modules, node loads those of the
    classes in use (export ``dataAwsRegion`` is module ``data_aws_region``); the eager mode runs without it."""
    fast, eager = runs["fast"][0], runs["eager"][0]
    assert fast["node"] is not None and fast["node"]["roots"] == 1 and fast["node"]["modules"] > 2000
    loaded = {re.sub(r"(?=[A-Z])", "_", name).lower() for name in fast["node"]["loaded"]}
    assert loaded and loaded <= set(fast["class_modules"]), sorted(loaded - set(fast["class_modules"]))
    assert eager["node"] is None


def test_jsiis_node_runs_its_interpreter_alone(runs):
    """harbor_ha/node/jsii-node is the node jsii starts, in both modes (the benchmark compares the imports
    alone), and its options reach jsii's kernel process without a warning from V8."""
    for mode in MODES:
        assert runs[mode][0]["jsii_node"] == str(PROJECT / "harbor_ha" / "node" / "jsii-node"), mode
    assert {"--jitless", "--single-threaded", "--no-expose-wasm"} <= set(runs["fast"][0]["node"]["execArgv"])
    assert "conflicting flags" not in runs["fast"][0]["stderr"], runs["fast"][0]["stderr"]
    env = {k: v for k, v in os.environ.items() if k != "HARBOR_HA_EAGER_PROVIDER"}
    shown = "import harbor_ha.aws, os; print(os.environ['JSII_NODE'])"
    own = shutil.which("node")
    done = subprocess.run([sys.executable, "-c", shown], env={**env, "JSII_NODE": own}, cwd=PROJECT,
                          capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip() == own, "the user's own node is kept"


def _resource_modules(modules: set[str]) -> set[str]:
    return {name for name in modules if not name.endswith("._private")}


# As an error, harbor-ha's warning stops the import at once, before the slow part it warns of.
SLOW_ORDER_AS_ERROR = "error:cdktf"


@pytest.mark.parametrize("imports, warned", [
    # What an earlier ``import cdktf_cdktf_provider_aws.<module>`` leaves (its root executed), without the
    # minutes that import takes on a loaded machine.
    ("import sys, types; sys.modules['cdktf_cdktf_provider_aws'] = types.ModuleType('cdktf_cdktf_provider_aws'); "
     "import harbor_ha.aws", True),
    ("import cdktf; import harbor_ha.aws", True),
    ("import harbor_ha.aws; import cdktf, cdktf_cdktf_provider_aws.vpc", False),
])
def test_an_import_order_that_makes_synth_slow_is_named_with_what_to_do(imports, warned):
    env = {k: v for k, v in os.environ.items() if k != "HARBOR_HA_EAGER_PROVIDER"}
    done = subprocess.run([sys.executable, "-W", SLOW_ORDER_AS_ERROR, "-c", imports], env=env, cwd=PROJECT,
                          capture_output=True, text=True, timeout=300)
    assert (done.returncode != 0) == warned, done.stderr[-2000:]
    if warned:
        assert "SlowProviderImport" in done.stderr and "import harbor_ha" in done.stderr.splitlines()[-1]
