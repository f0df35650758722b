"""harbor_ha's modules import one another without a circle, imports inside functions included: a circle hidden
in a function-level import (deploy -> recovery -> inventory -> verify -> deploy was one) works only as long as
nobody moves the import to the top."""

from __future__ import annotations

import ast

from conftest import PROJECT


def imports_by_module() -> dict[str, set[str]]:
    """Module name -> the harbor_ha modules it imports anywhere in its body."""
    package = PROJECT / "harbor_ha"
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(PROJECT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        named: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harbor_ha"):
                named |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                named |= {alias.name for alias in node.names if alias.name.startswith("harbor_ha")}
        found[name] = named
    return {name: {other for other in named if other in found and other != name} for name, named in found.items()}


def a_circle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle of ``graph`` as the modules along it, or ``[]``."""
    done: set[str] = set()

    def walk(name: str, path: list[str]) -> list[str]:
        if name in path:
            return path[path.index(name):] + [name]
        if name in done:
            return []
        for other in sorted(graph[name]):
            circle = walk(other, path + [name])
            if circle:
                return circle
        done.add(name)
        return []

    for name in sorted(graph):
        circle = walk(name, [])
        if circle:
            return circle
    return []


def test_a_circle_is_found():
    assert a_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert a_circle({"a": {"b"}, "b": set()}) == []


def test_no_module_of_harbor_ha_imports_itself_through_others():
    graph = imports_by_module()
    assert {"harbor_ha.deploy", "harbor_ha.verify", "harbor_ha.recovery", "harbor_ha.inventory"} <= set(graph)
    assert "harbor_ha.verify" in graph["harbor_ha.inventory"], "function-level and top-level imports are both read"
    assert a_circle(graph) == [], " -> ".join(a_circle(graph))
