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

``harbor_ha.cli.parser`` holds the arguments, ``harbor_ha.cli.commands`` one function per command; ``main`` here
turns what goes wrong into one line and an exit code (2: a mistake of the user's, 1: a failed step).
"""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager

from harbor_ha.cli.commands import COMMANDS
from harbor_ha.cli.parser import PROG, build_parser
from harbor_ha.settings import SettingsError


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
