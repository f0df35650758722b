"""harbor_ha's layers depend one way, settings -> stacks -> constructs: a construct imports neither the settings
nor a stack (imports inside functions included), and no stack imports another stack (what two stacks share lives
in harbor_ha/stacks/base.py or props.py)."""

from __future__ import annotations

import ast

from conftest import PROJECT
from harbor_ha.stacks import STACK_CLASSES

PACKAGE = PROJECT / "harbor_ha"


def imported(path) -> set[str]:
    """The harbor_ha modules ``path`` imports anywhere in its body."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return {name for name in names if name.startswith("harbor_ha")}


def within(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def test_imports_are_read_at_every_level(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from harbor_ha.settings import X\n    import harbor_ha.stacks.base\n")
    assert imported(module) == {"harbor_ha.settings", "harbor_ha.stacks.base"}


def test_no_construct_imports_the_settings_or_a_stack():
    wrong = {path.name: sorted(name for name in imported(path)
                               if within(name, "harbor_ha.settings") or within(name, "harbor_ha.stacks"))
             for path in sorted((PACKAGE / "constructs").glob("*.py"))}
    assert {name: modules for name, modules in wrong.items() if modules} == {}


def test_no_stack_imports_another_stack():
    stack_modules = {target.split(":")[0] for target in STACK_CLASSES.values()}
    wrong = {path.name: sorted(name for name in imported(path) if name in stack_modules - {f"harbor_ha.stacks.{path.stem}"})
             for path in sorted((PACKAGE / "stacks").glob("*.py"))}
    assert {name: modules for name, modules in wrong.items() if modules} == {}
