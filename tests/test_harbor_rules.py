"""The rules settings apply to what reaches Harbor agree with Harbor's own installer code: a hostname the
settings accept is one Harbor's loader accepts, and one Harbor refuses, the settings refuse, in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harbor_ha.harbor_boot import script_path
from harbor_ha.harbor_config import HarborConfig, render_harbor_yml
from harbor_ha.harbor_release import parse_release
from harbor_ha.settings import HarborHaSettings
from conftest import reference_file

HOSTNAMES = ["registry.example.com", "harbor.internal", "a.b", "x-1.example.co.uk", "xn--bcher-kva.example",
             "127.0.0.1", "reg.mydomain.com", "10.0.0.5", "registry", "Registry.Example.com", "-bad.example.com",
             "bad-.example.com", "under_score.example.com", "registry.example.com.", "registry.example.com\n",
             "https://registry.example.com", "registry.example.com:443", "registry.example.com/path",
             "a" * 64 + ".example.com", ".".join(["a" * 63] * 4), "", " registry.example.com", "reg istry.com",
             "registry.example.123"]

# Runs Harbor's loader (make/photon/prepare: parse_yaml_config + validate) on each harbor.yml named on stdin.
LOADER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from utils.configs import parse_yaml_config, validate
results = {}
for path in json.load(sys.stdin):
    try:
        validate(parse_yaml_config(path, with_trivy=True))
        results[path] = None
    except Exception as error:
        results[path] = f"{type(error).__name__}: {error}"
print(json.dumps(results))
"""


def harbors_verdicts(tmp_path, hostnames: list[str]) -> dict[str, str | None]:
    """hostname -> None if Harbor's loader accepts a harbor.yml with it, else its error."""
    paths = {}
    for n, hostname in enumerate(hostnames):
        path = tmp_path / f"harbor-{n}.yml"
        path.write_text(render_harbor_yml(HarborConfig(harbor_version="2.15.2", hostname=hostname)))
        paths[str(path)] = hostname
    result = subprocess.run([sys.executable, "-c", LOADER, str(reference_file("prepare/main.py").parent)],
                            input=json.dumps(list(paths)), capture_output=True, text=True, timeout=120, check=True)
    return {paths[path]: verdict for path, verdict in json.loads(result.stdout).items()}


def test_settings_accept_only_hostnames_harbors_loader_accepts(tmp_path):
    verdicts = harbors_verdicts(tmp_path, HOSTNAMES)
    assert verdicts["127.0.0.1"] and verdicts["reg.mydomain.com"], "Harbor's loader refuses these two"
    for hostname in HOSTNAMES:
        problems = HarborHaSettings(hostname=hostname).problems()
        if hostname and not problems:
            assert verdicts[hostname] is None, f"settings accept {hostname!r}, Harbor refuses: {verdicts[hostname]}"
        if verdicts[hostname] is not None:
            assert problems, f"Harbor refuses {hostname!r} ({verdicts[hostname]}), settings accept it"
        for problem in problems:
            assert "\n" not in problem and problem.startswith("hostname = ") and "allowed is" in problem


@pytest.mark.parametrize("version,accepted", [
    ("2.15.2", True), ("2.13.0", True), ("2.15.0-rc1", True), ("3.0.0", True),
    ("v2.15.2", False), ("2.12.9", False), ("1.5.4", False), ("2.15", False), ("2.15.2\n", False), ("latest", False),
    ("2.15.2-beta", False), (" 2.15.2", False), ("", False)])
def test_harbor_version_is_a_release_number_the_boot_scripts_can_install(version, accepted):
    problems = HarborHaSettings(harbor_version=version).problems()
    assert (not problems) == accepted, problems
    if accepted:
        # install-harbor.sh adds the 'v' of Harbor's tags: a version written with it would download vv2.15.2.
        assert "releases/download/v$HARBOR_VERSION" in script_path("install-harbor.sh").read_text()
        assert parse_release(version) is not None
    else:
        assert len(problems) == 1 and problems[0].startswith("harbor_version = ") and "\n" not in problems[0]
