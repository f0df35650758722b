"""Synthesize every solution stack that exists (``harbor_ha.stacks.STACK_CLASSES``) in one process, the
way ``cdktf synth`` does, into OUTDIR.

    python benchmarks/synth_all.py OUTDIR [--coverage] [--stacks active-active,...] [--harbor-count N]
        [--target local|aws]

``--coverage`` adds a stack holding one of every provider resource, data source and provider class that
``harbor_ha.aws`` imports, built from its required arguments only, so that the comparison of the fast and the
eager provider import (tests/test_fast_provider_import.py) also covers the classes no stack uses yet.
With no stack module written yet, the coverage stack is synthesized instead of the stacks.

Prints one JSON line: the stacks synthesized, the provider classes ``harbor_ha.aws`` imports (how many, from
which binding modules) and the ``cdktf_cdktf_provider_aws`` modules this process loaded.
Whether the provider package is imported the fast or the eager way is ``HARBOR_HA_EAGER_PROVIDER``'s
business (harbor_ha/aws.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import sys
import typing

# Fixed, so that the output does not depend on which free port an emulator got; nothing is contacted.
LOCAL_ENDPOINT = "http://127.0.0.1:4566"
COVERAGE_STACK = "provider-class-coverage"


def existing_stacks() -> list[str]:
    """The registered stacks whose module has been written."""
    from harbor_ha.stacks import STACK_CLASSES

    return [name for name, target in STACK_CLASSES.items()
            if importlib.util.find_spec(target.split(":")[0]) is not None]


def provider_classes() -> list[type]:
    """Every provider, resource and data source class that ``harbor_ha.aws`` imports, in import order."""
    from cdktf import TerraformDataSource, TerraformProvider, TerraformResource

    import harbor_ha.aws as aws

    return [value for value in vars(aws).values()
            if isinstance(value, type) and value.__module__.startswith("cdktf_cdktf_provider_aws.")
            and issubclass(value, (TerraformResource, TerraformDataSource, TerraformProvider))]


def _placeholder(annotation, module, name: str):
    """A value of the type ``annotation`` (as jsii writes it), recognisable in the output by ``name``."""
    if isinstance(annotation, typing.ForwardRef):
        return _struct(getattr(module, annotation.__forward_arg__), module)
    if isinstance(annotation, type):
        if annotation is str:
            return f"{name}-value"
        if annotation in (int, float):
            return 1
        if annotation is bool:
            return True
        return _struct(annotation, module)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union:
        # jsii unions put the concrete type first, then tokens (IResolvable) or the plain-dict form.
        return _placeholder(args[0] if "IResolvable" not in repr(args[0]) else args[1], module, name)
    if origin is not None and args:  # Sequence[...]
        return [_placeholder(args[0], module, name)]
    raise TypeError(f"no placeholder for {annotation!r} ({name})")


def _required_kwargs(cls: type, module) -> dict:
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name: _placeholder(p.annotation, module, p.name) for p in parameters
            if p.kind is p.KEYWORD_ONLY and p.default is p.empty}


def _struct(cls: type, module):
    return cls(**_required_kwargs(cls, module))


def add_coverage_stack(app) -> None:
    from harbor_ha.aws import TerraformStack

    stack = TerraformStack(app, COVERAGE_STACK)
    for cls in provider_classes():
        module = sys.modules[cls.__module__]
        extra = {"alias": "coverage"} if cls.__name__ == "AwsProvider" else {}
        cls(stack, cls.__name__, **_required_kwargs(cls, module), **extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--coverage", action="store_true", help="add the provider-class coverage stack")
    parser.add_argument("--stacks", type=lambda text: [name for name in text.split(",") if name],
                        help="comma-separated stack names (default: every stack that exists)")
    parser.add_argument("--harbor-count", type=int, help="the harbor_count setting (default: its default)")
    parser.add_argument("--target", default="local", help="the target setting the stacks are built for")
    options = parser.parse_args(argv)

    from harbor_ha.app import build_app
    from harbor_ha.aws import App
    from harbor_ha.settings import HarborHaSettings

    stacks = existing_stacks() if options.stacks is None else options.stacks
    sizes = {} if options.harbor_count is None else {"harbor_count": options.harbor_count}
    app = build_app(HarborHaSettings(stacks=tuple(stacks), target=options.target, **sizes), outdir=options.outdir,
                    local_endpoint=LOCAL_ENDPOINT) if stacks else App(outdir=options.outdir)
    if options.coverage or not stacks:
        add_coverage_stack(app)
        stacks.append(COVERAGE_STACK)
    app.synth()
    classes = provider_classes()
    print(json.dumps({
        "stacks": stacks,
        "provider_classes": len(classes),
        "class_modules": sorted({cls.__module__.split(".", 1)[1] for cls in classes}),
        "modules": sorted(name for name in sys.modules if name.startswith("cdktf_cdktf_provider_aws.")),
        "jsii_node": os.environ.get("JSII_NODE"),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
