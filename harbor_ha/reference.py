"""The construct reference (docs/constructs.md), generated from the construct modules' own docstrings, props
dataclasses and constructor signatures, so that it cannot drift from the code (a test compares them).

    python -m harbor_ha.reference > docs/constructs.md
"""

from __future__ import annotations

import ast
from pathlib import Path

CONSTRUCTS = Path(__file__).resolve().parent / "constructs"
# Shared building blocks of the constructs, not constructs a project uses on their own.
INTERNAL_MODULES = ("data_tier",)
# Where the examples import from: the package exports every documented name (harbor_ha/constructs/__init__.py).
PACKAGE = "harbor_ha.constructs"
HEADER = """# Construct reference

Every construct of `harbor_ha.constructs`, as an outside project imports it. Each takes `(scope, id, *, props)`
(or keyword arguments where it has no props class); a props class is a frozen dataclass whose fields state
their defaults. In the examples `...` marks a value you supply (required fields only; the others have
defaults), and `stack` is your `TerraformStack`. `examples/custom_stack/main.py` is a complete, tested program
that composes them; `examples/own_vpc` (the project's own VPC by reference), `examples/existing_data` (existing
stores by attributes) and `examples/replication_pair` (two Harbors replicating both ways) are others.

A prop that takes another part names a protocol (`harbor_ha.constructs.interfaces`, at the end), not a class:
harbor-ha's constructs satisfy them, and so do the stores an importer (`from_attributes`) returns for a
database, cache or bucket that exists already. Each attribute may be a Terraform reference (a token) unless
said otherwise.

Generated from the code by `python -m harbor_ha.reference > docs/constructs.md` (a test keeps this file in
step).
"""


def _doc(node) -> str:
    return " ".join((ast.get_docstring(node) or "").split())


def _first_paragraph(node) -> str:
    return " ".join((ast.get_docstring(node) or "").split("\n\n")[0].split())


def _fields(props: ast.ClassDef) -> list[tuple[str, str, bool, str]]:
    """(name, type, required, docstring) of each field of a props dataclass."""
    found = []
    body = props.body
    for node, following in zip(body, [*body[1:], None]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            doc = (" ".join(str(following.value.value).split()) if isinstance(following, ast.Expr)
                   and isinstance(following.value, ast.Constant) else "")
            found.append((node.target.id, ast.unparse(node.annotation), node.value is None, doc))
    return found


def _keyword_args(cls: ast.ClassDef) -> list[tuple[str, str, bool]]:
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is None:
        return []
    args = init.args
    defaults = [None] * (len(args.kwonlyargs) - len(args.kw_defaults)) + list(args.kw_defaults)
    return [(a.arg, ast.unparse(a.annotation) if a.annotation else "", d is None)
            for a, d in zip(args.kwonlyargs, defaults)]


def _importers(cls: ast.ClassDef) -> list[ast.FunctionDef]:
    return [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name.startswith("from_")]


def _returned(function: ast.FunctionDef) -> str:
    return ast.unparse(function.returns).strip("'\"") if function.returns else ""


def _constants(tree: ast.Module) -> dict[str, str]:
    """The module's constants (``NAME = literal``), as source text."""
    return {node.targets[0].id: ast.unparse(node.value) for node in tree.body
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)}


def _arguments(function: ast.FunctionDef, constants: dict[str, str]) -> list[tuple[str, str, str]]:
    """(name, type, default or "") of each keyword-only argument; a default that names a constant shows its value."""
    args = function.args
    return [(a.arg, ast.unparse(a.annotation) if a.annotation else "",
             "" if d is None else constants.get(ast.unparse(d), ast.unparse(d)))
            for a, d in zip(args.kwonlyargs, args.kw_defaults)]


def _importer_lines(module: str, name: str, variable: str, function: ast.FunctionDef,
                    classes: dict[str, ast.ClassDef], tree: ast.Module) -> list[str]:
    arguments = _arguments(function, _constants(tree))
    given = "".join(f", {n}=..." for n, _, default in arguments if not default)
    returned = _returned(function)
    lines = [f"### Importer: `{name}.{function.name}`", "", "```python", f"from {PACKAGE} import {name}", "",
             f'{variable} = {name}.{function.name}(stack, "{variable.replace("_", "-")}"{given})', "```", "",
             _doc(function), ""]
    if returned in classes:
        lines += [f"Returns `{returned}`. {_doc(classes[returned])}", ""]
    lines += ["| argument | type | default |", "|---|---|---|"]
    lines += [f"| `{n}` | `{t}` | {f'`{d}`' if d else 'required'} |" for n, t, d in arguments]
    return lines + [""]


def protocol_reference(tree: ast.Module) -> str:
    """The protocols of ``harbor_ha/constructs/interfaces.py``: what a prop asks of another part."""
    lines = ["## Protocols", "", f"`harbor_ha.constructs.interfaces`: {_doc(tree)}", ""]
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        lines += [f"### {cls.name}", "", _doc(cls), "", "| member | type | meaning |", "|---|---|---|"]
        for name, type_, _, doc in _fields(cls):
            lines.append(f"| `{name}` | `{type_}` | {doc.replace('|', '/')} |")
        for method in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            parameters = ", ".join(a.arg for a in method.args.args[1:])
            lines.append(f"| `{method.name}({parameters})` | method | {_doc(method).replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines)


def _is_construct(cls: ast.ClassDef) -> bool:
    return any(ast.unparse(base) == "Construct" for base in cls.bases)


def construct_reference() -> str:
    """The Markdown reference of every construct class in ``harbor_ha/constructs``."""
    sections = [HEADER]
    for path in sorted(CONSTRUCTS.glob("*.py")):
        if path.stem in INTERNAL_MODULES:
            continue
        tree = ast.parse(path.read_text())
        classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        module = f"harbor_ha.constructs.{path.stem}"
        # What an importer returns is documented with the importer.
        imported = {_returned(f) for c in classes.values() for f in _importers(c)}
        for name, cls in classes.items():
            if not _is_construct(cls) or name.startswith("_") or name in imported:
                continue
            props = classes.get(f"{name}Props")
            sections.append(_section(module, name, cls, props, tree, classes))
    sections.append(protocol_reference(ast.parse((CONSTRUCTS / "interfaces.py").read_text())))
    return "\n".join(sections).rstrip() + "\n"


def _section(module: str, name: str, cls: ast.ClassDef, props: ast.ClassDef | None, tree: ast.Module,
             classes: dict[str, ast.ClassDef]) -> str:
    variable = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    lines = [f"## {name}", "", f"`{module}`: {_first_paragraph(tree)}", ""]
    if props is not None:
        required = [f for f in _fields(props) if f[2]]
        arguments = ", ".join(f"{n}=..." for n, *_ in required)
        lines += ["```python", f"from {PACKAGE} import {name}, {props.name}", "",
                  f'{variable} = {name}(stack, "{variable.replace("_", "-")}", props={props.name}({arguments}))',
                  "```", ""]
    else:
        required = [a for a in _keyword_args(cls) if a[2]]
        arguments = "".join(f", {n}=..." for n, *_ in required)
        lines += ["```python", f"from {PACKAGE} import {name}", "",
                  f'{variable} = {name}(stack, "{variable.replace("_", "-")}"{arguments})', "```", ""]
    if _doc(cls):
        lines += [_doc(cls), ""]
    if props is not None:
        lines += [f"`{props.name}`" + (f": {_doc(props)}" if _doc(props) else " fields:"), "",
                  "| field | type | required | meaning and default |",
                  "|---|---|---|---|"]
        lines += [f"| `{n}` | `{t}` | {'yes' if r else ''} | {d.replace('|', '/')} |" for n, t, r, d in _fields(props)]
        lines.append("")
    else:
        lines += ["| argument | type | required |", "|---|---|---|"]
        lines += [f"| `{n}` | `{t}` | {'yes' if r else ''} |" for n, t, r in _keyword_args(cls)]
        lines.append("")
    for importer in _importers(cls):
        lines += _importer_lines(module, name, variable, importer, classes, tree)
    return "\n".join(lines)


if __name__ == "__main__":
    print(construct_reference(), end="")
