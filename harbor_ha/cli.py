"""``harbor-ha``: deploy, check and remove harbor-ha stacks, and manage the local AWS emulator.

    harbor-ha up active-active        synth + terraform init/apply, then the outputs
    harbor-ha verify active-active    check the deployment with boto3 (exit 1 on any failure); --json
    harbor-ha plan active-active      exit 0: no changes, 2: changes; --json: a summary per resource type
    harbor-ha outputs active-active   JSON, sensitive values masked
    harbor-ha down active-active      destroy
    harbor-ha local start|stop|status|reset
    harbor-ha env                     shell exports for running ``cdktf deploy`` offline
    harbor-ha replicate ...           configure Harbor replication (see ``harbor-ha replicate --help``)
    harbor-ha diagram [STACK ...]     architecture pictures (SVG, PNG) from the synthesized stacks
    harbor-ha cost [STACK ...]        monthly cost from the synthesized resources and the price table
    harbor-ha drill active-active     failover drill with the real keepalived and IPVS; recovery figures

Every command that changes something first prints the target, region and account.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from contextlib import contextmanager

from harbor_ha.settings import STACK_NAMES, SettingsError, load_settings

PROG = "harbor-ha"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Highly available Harbor on AWS: deploy and check "
                                     "harbor-ha stacks on the target chosen by the 'target' setting (local|aws).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (("up", "synthesize and deploy STACK (terraform init + apply)"),
                       ("verify", "check the deployed STACK against its design, one line per check"),
                       ("outputs", "print STACK's outputs as JSON (sensitive values masked)"),
                       ("down", "destroy every resource of STACK"),
                       ("plan", "show what a deploy would change; exit 0 if nothing, 2 if something")):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("stack", metavar="STACK", choices=STACK_NAMES, help=" | ".join(STACK_NAMES))
    local = commands.add_parser("local", help="manage the local AWS emulator (target 'local')")
    local.add_argument("action", choices=("start", "stop", "status", "reset"),
                       help="start (or reuse) | stop (discards what was deployed on it) | status | "
                            "reset (empty it and forget the local Terraform state)")
    commands.add_parser("env", help="print shell exports for 'cdktf deploy' (offline provider mirror): "
                        'eval "$(harbor-ha env)"')
    commands.add_parser("replicate", help="configure Harbor replication between deployed Harbors",
                        add_help=False)
    add_view_commands(commands)
    for name, text in (("verify", "one JSON document: every check and the counts"),
                       ("outputs", "the same JSON (outputs are always JSON; accepted like the other commands)"),
                       ("plan", "one JSON document: adds, changes, replaces, destroys per resource type")):
        commands.choices[name].add_argument("--json", action="store_true", help=f"machine-readable output: {text}")
    from harbor_ha.drill.command import add_arguments as add_drill_arguments

    add_drill_arguments(commands.add_parser(
        "drill", help="fail the stack's VRRP pair over for real (keepalived in network namespaces, IPVS in a "
        "QEMU guest, the Elastic IP in the emulator) and print the recovery figures"))
    return parser


def add_view_commands(commands) -> None:
    """``diagram`` and ``cost``: views of synthesized stacks; nothing is deployed or contacted."""
    diagram = commands.add_parser("diagram", help="draw STACK's architecture (SVG and PNG) from its synthesized "
                                  "JSON; no STACK: all four")
    cost = commands.add_parser("cost", help="monthly cost of STACK from its synthesized resources and harbor-ha's "
                               "price table; no STACK: all four")
    for command in (diagram, cost):
        command.add_argument("stacks", metavar="STACK", nargs="*", type=_stack_name, help=" | ".join(STACK_NAMES))
        command.add_argument("--defaults", action="store_true",
                             help="use the default settings, not this project's (what the docs show)")
    diagram.add_argument("--out", help="directory for <STACK>.svg and <STACK>.png (default: the current directory; "
                         "with --defaults docs/diagrams, the pictures the README shows)")
    cost.add_argument("--json", action="store_true", help="machine-readable output")
    cost.add_argument("--image-gib", type=float, default=None, help="GB of images stored per image bucket "
                      "(default 100)")
    cost.add_argument("--compare", action="store_true", help="print the README's side-by-side Markdown table")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["replicate"]:
        from harbor_ha.replication import main as replicate

        return replicate(argv[1:])
    args = build_parser().parse_args(argv)
    from harbor_ha.changes import ChangeRefused
    from harbor_ha.local.emulator import EmulatorError
    from harbor_ha.rolling import RollStopped
    from harbor_ha.stack_run import CredentialsMissing, DeployError, Interrupted

    try:
        with _terminated_as_interrupt():
            return COMMANDS[args.command](args)
    except Interrupted as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 128 + error.signal
    except (SettingsError, CredentialsMissing, EmulatorError, ChangeRefused) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("harbor_ha.stacks."):
            raise
        print(f"{PROG}: stack {args.stack} is not part of this harbor-ha version", file=sys.stderr)
        return 2
    except (DeployError, RollStopped) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupt:
        number = interrupt.args[0] if interrupt.args else signal.SIGINT
        print(f"{PROG}: interrupted ({signal.Signals(number).name}) while no terraform was running; continue "
              f"with: {PROG} {' '.join(argv)}", file=sys.stderr)
        return 128 + number


@contextmanager
def _terminated_as_interrupt():
    """SIGTERM (what CI runners and supervisors send) ends harbor-ha like Ctrl-C: one line, no traceback.
    While terraform runs, both signals are forwarded to it instead (harbor_ha.terraform_run)."""
    def interrupt(number, _frame):
        raise KeyboardInterrupt(number)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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


def _stack_name(text: str) -> str:
    if text not in STACK_NAMES:
        raise argparse.ArgumentTypeError(f"stack = {text!r}: allowed is one of {', '.join(STACK_NAMES)}")
    return text


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
