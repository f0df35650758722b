"""``harbor_ha.constructs`` exports every construct, props class and protocol that docs/constructs.md
documents, each the class its module defines, and loads a module only when one of its names is asked for."""

from __future__ import annotations

import re
import subprocess
import sys

import harbor_ha.constructs as constructs
from harbor_ha.reference import construct_reference

from conftest import PROJECT


def test_the_package_exports_what_the_reference_documents():
    reference = construct_reference()
    documented = set(re.findall(r"^##+ ([A-Z]\w+)$", reference, re.M))
    documented |= set(re.findall(r"^from harbor_ha\.constructs import \w+, (\w+Props)$", reference, re.M))
    assert set(constructs.__all__) == documented - {"Protocols"}


def test_every_export_is_the_class_its_module_defines():
    for name in constructs.__all__:
        value = getattr(constructs, name)
        assert value.__name__ == name and value.__module__.startswith("harbor_ha.constructs."), name


def test_the_package_loads_nothing_until_a_name_is_asked_for():
    probe = ("import sys, harbor_ha.constructs as c; assert 'cdktf' not in sys.modules, 'cdktf loaded'; "
             "c.HarborFleet; assert 'harbor_ha.constructs.harbor_fleet' in sys.modules; "
             "assert 'harbor_ha.constructs.lb_pair' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
