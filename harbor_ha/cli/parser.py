"""The ``harbor-ha`` argument parser: every command, its arguments and its help."""

from __future__ import annotations

import argparse

from harbor_ha.settings import STACK_NAMES

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


def _stack_name(text: str) -> str:
    if text not in STACK_NAMES:
        raise argparse.ArgumentTypeError(f"stack = {text!r}: allowed is one of {', '.join(STACK_NAMES)}")
    return text
