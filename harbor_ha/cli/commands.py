"""The ``harbor-ha`` commands: each takes the parsed arguments, calls the library (``harbor_ha.deploy`` for what
changes a stack) and prints; returns the exit code."""

from __future__ import annotations

import json
import sys

from harbor_ha.cli.parser import PROG
from harbor_ha.settings import STACK_NAMES, load_settings


def _say(line: str, file=None) -> None:
    print(f"{PROG}: {line}", flush=True, file=file or sys.stdout)


def cmd_up(args) -> int:
    from harbor_ha.deploy import deploy

    outputs = deploy(args.stack, load_settings(), say=_say, mask_sensitive=True)
    print(f"{PROG}: {args.stack} is deployed; outputs:")
    for name, value in sorted(outputs.items()):
        print(f"  {name} = {json.dumps(value)}")
    return 0


def cmd_verify(args) -> int:
    from harbor_ha.verify import verify

    checks = verify(args.stack, load_settings(), report=None if args.json else print)
    failed = sum(not c.ok for c in checks)
    if args.json:
        print(json.dumps({"stack": args.stack, "passed": len(checks) - failed, "failed": failed,
                          "checks": [{"ok": c.ok, "what": c.what} for c in checks]}, indent=2))
    else:
        print(f"{PROG}: {len(checks) - failed} of {len(checks)} checks passed")
    return 1 if failed else 0


def cmd_outputs(args) -> int:
    from harbor_ha.deploy import outputs

    print(json.dumps(outputs(args.stack, load_settings(), mask_sensitive=True), indent=2, sort_keys=True))
    return 0


def cmd_down(args) -> int:
    from harbor_ha.deploy import destroy

    return 1 if destroy(args.stack, load_settings(), say=_say) else 0


def cmd_plan(args) -> int:
    from harbor_ha.deploy import plan, plan_summary

    if args.json:
        summary = plan_summary(args.stack, load_settings(), say=lambda line: _say(line, file=sys.stderr))
        print(json.dumps(summary, indent=2))
        return 2 if summary["changes"] else 0
    roll = plan(args.stack, load_settings(), say=_say)
    for line in roll.lines() if roll else []:
        _say(line)
    return 2 if roll else 0


def cmd_local(args) -> int:
    from harbor_ha.local import emulator

    if args.action == "start":
        running, started = emulator.start()
        print(f"{PROG}: local AWS emulator {'started' if started else 'already running'} at {running.endpoint} "
              f"(pid {running.pid}, account {emulator.ACCOUNT_ID}, log {emulator.local_dir() / 'server.log'})")
    elif args.action == "stop":
        stopped = emulator.stop()
        print(f"{PROG}: local AWS emulator " + ("stopped; what was deployed on it is gone (run "
              f"'{PROG} local reset' to forget its Terraform state)" if stopped else "was not running"))
    elif args.action == "status":
        running = emulator.status()
        stale = emulator.local_state_files()
        if running:
            print(f"{PROG}: local AWS emulator running at {running.endpoint} (pid {running.pid})")
            return 0
        print(f"{PROG}: local AWS emulator not running" + (
            f"; local Terraform state still lists resources that went with it: run '{PROG} local reset'"
            if stale else ""))
        return 1
    else:
        removed = emulator.reset()
        print(f"{PROG}: local AWS emulator emptied (if running); removed local state: "
              + (", ".join(str(p) for p in removed) or "none"))
    return 0


def cmd_env(args) -> int:
    from harbor_ha.terraform_config import UPDATE_CHECKS_OFF, terraform_env

    env = terraform_env(load_settings().provider_mirror)
    for name in ("TF_CLI_CONFIG_FILE", "TF_PLUGIN_CACHE_DIR", *UPDATE_CHECKS_OFF):
        if name in env:
            print(f"export {name}={env[name]}")
    if "TF_CLI_CONFIG_FILE" not in env:
        print("# no provider mirror found: terraform installs providers from the public registry")
    return 0


def _synthesized(args) -> dict[str, dict]:
    from harbor_ha.settings import HarborHaSettings
    from harbor_ha.synthesized import synthesize

    return synthesize(args.stacks or STACK_NAMES, HarborHaSettings() if args.defaults else load_settings())


def cmd_diagram(args) -> int:
    from pathlib import Path

    from harbor_ha.diagram import draw

    for name, doc in _synthesized(args).items():
        _, files = draw(doc, name, Path(args.out or ("docs/diagrams" if args.defaults else ".")))
        print(f"{PROG}: {name}: " + ", ".join(str(f) for f in files))
    return 0


def cmd_cost(args) -> int:
    from harbor_ha.cost import DEFAULT_IMAGE_GIB, estimate

    docs = _synthesized(args)
    image_gib = DEFAULT_IMAGE_GIB if args.image_gib is None else args.image_gib
    estimates = {name: estimate(doc, name, image_gib=image_gib) for name, doc in docs.items()}
    if args.compare:
        from harbor_ha.compare import comparison_table

        print(comparison_table(docs, estimates))
    elif args.json:
        print(json.dumps([e.as_json() for e in estimates.values()], indent=2))
    else:
        print("\n\n".join(e.text() for e in estimates.values()))
    return 0


def cmd_drill(args) -> int:
    from harbor_ha.drill.command import main as drill

    return drill(args, load_settings())


COMMANDS = {"up": cmd_up, "verify": cmd_verify, "outputs": cmd_outputs, "down": cmd_down, "plan": cmd_plan,
            "local": cmd_local, "env": cmd_env, "diagram": cmd_diagram, "cost": cmd_cost, "drill": cmd_drill}
