"""Security posture of the synthesized stacks, judged by checkov with the project's .checkov.yaml, on every
stack of both targets: no failed check, except on a resource that carries a suppression of exactly that check
with its reason (harbor_ha/constructs/checkov.py). checkov 3.3 honours no skip comments in Terraform JSON,
so this test applies them, for the one resource each names; the README lists every one."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from harbor_ha.constructs.checkov import skips_of

from conftest import PROJECT, require_tool

CONFIG = PROJECT / ".checkov.yaml"
README = PROJECT / "README.md"

pytestmark = pytest.mark.timeout(900)


def _resource(doc: dict, reported: str) -> tuple[str, dict]:
    """The synthesized resource checkov names ``<type>.<name>`` (graph checks) or ``resource.<name>``."""
    kind, name = reported.split(".", 1)
    for type_, items in {**doc.get("resource", {}), **doc.get("data", {})}.items():
        if kind in ("resource", "data", type_) and name in items:
            return type_, items[name]
    raise AssertionError(f"checkov reported {reported}, which is not in the synthesized stack")


@pytest.fixture(scope="module")
def report(synthesized_stacks) -> tuple[list[dict], dict]:
    """checkov's failed checks over every synthesized stack of both targets, and the stacks by path."""
    checkov = require_tool("checkov")
    root = next(iter(synthesized_stacks.values())).parents[3]
    files = {str(path.relative_to(root)): path for path in synthesized_stacks.values()}
    done = subprocess.run([checkov, "--config-file", str(CONFIG), *[a for f in files for a in ("-f", f)],
                           "-o", "json"], cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), f"checkov failed:\n{done.stderr[-4000:]}"
    result = json.loads(done.stdout)
    assert result["check_type"] == "terraform_json", result.get("check_type")
    summary = result["summary"]
    assert summary["parsing_errors"] == 0 and summary["passed"] > 50 * len(files), summary
    docs = {name: json.loads(path.read_text()) for name, path in files.items()}
    return result["results"]["failed_checks"], docs


def test_no_failed_check_but_the_suppressed_ones(report):
    failed, docs = report
    unsuppressed: dict[str, list[str]] = {}
    for check in failed:
        name = check["file_path"].strip("/")
        _, body = _resource(docs[name], check["resource"])
        if check["check_id"] not in skips_of(body):
            unsuppressed.setdefault(check["check_id"], []).append(f"{name}: {check['resource']}")
    assert not unsuppressed, "checkov findings:\n" + json.dumps(unsuppressed, indent=2)


def test_every_suppression_suppresses_a_failed_check(report):
    """A suppression on a resource that no longer fails its check is stale: remove it."""
    failed, docs = report
    used = {(check["file_path"].strip("/"), _resource(docs[check["file_path"].strip("/")], check["resource"])[1]
             ["//"]["metadata"]["path"], check["check_id"]) for check in failed}
    stale = [(name, body["//"]["metadata"]["path"], check)
             for name, doc in docs.items() for items in doc.get("resource", {}).values() for body in items.values()
             for check in skips_of(body) if (name, body["//"]["metadata"]["path"], check) not in used]
    assert not stale, f"suppressions of checks that pass: {stale}"


def suppressions(docs: dict) -> set[tuple[str, str, str]]:
    """(check id, resource type, reason) of every suppression in the synthesized stacks."""
    found = set()
    for doc in docs.values():
        for type_, items in doc.get("resource", {}).items():
            for body in items.values():
                for check, reason in skips_of(body).items():
                    assert len(reason) > 30, f"{check} on {type_}: say why"
                    found.add((check, type_, reason))
    return found


def readme_table(docs: dict) -> str:
    rows = ["| check | resource | why it does not apply there |", "|---|---|---|"]
    rows += [f"| {check} | `{type_}` | {reason} |" for check, type_, reason in sorted(suppressions(docs))]
    return "\n".join(rows)


def test_readme_lists_every_suppression(report):
    table = readme_table(report[1])
    assert table in README.read_text(), f"README's checkov suppressions are out of date; the table is:\n{table}"


def test_no_check_is_skipped_for_a_whole_run():
    config = yaml.safe_load(CONFIG.read_text())
    assert not config.get("skip-check") and not config.get("soft-fail"), ".checkov.yaml skips checks for every resource"
    assert not re.search(r"(?m)^\s*(skip-check|soft-fail)", CONFIG.read_text())
