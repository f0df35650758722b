"""``harbor-ha drill STACK [--runs N] [--json]``: every scenario of STACK's failover, N times, then the figures.
Exit 0 when every run passed and every target held, 1 otherwise, 2 when the drill cannot run here."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from harbor_ha.drill import netns
from harbor_ha.drill.figures import summarize, table, to_json
from harbor_ha.drill.pair import DRILL_STACKS, PairDrill
from harbor_ha.drill.scenarios import Run, run_scenarios

DEFAULT_RUNS = 5
MAX_RUNS = 20


def runs_argument(text: str) -> int:
    """``--runs``: a whole number from 1 to MAX_RUNS, else one line naming the value and what is allowed."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_RUNS:
        raise argparse.ArgumentTypeError(f"runs = {text}: allowed is a whole number from 1 to {MAX_RUNS}")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", metavar="STACK", choices=DRILL_STACKS, help=" | ".join(DRILL_STACKS))
    parser.add_argument("--runs", type=runs_argument, default=DEFAULT_RUNS,
                        help=f"runs of each scenario (1-{MAX_RUNS}, default {DEFAULT_RUNS})")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")


def drill(stack: str, settings, runs: int, progress=lambda run: None, lvs: bool = True) -> dict:
    """Run the drill of ``stack`` and return its figures (``harbor_ha.drill.figures.summarize``). For
    active-active, ``lvs`` adds the LVS half in the QEMU guest."""
    results: list[Run] = []
    with PairDrill(stack, settings) as pair:
        results += run_scenarios(pair, runs, progress=progress)
    if stack == "active-active" and lvs:
        from harbor_ha.drill.lvs import lvs_drill

        guest_runs, _ = lvs_drill(settings, runs)
        for run in guest_runs:
            progress(run)
        results += guest_runs
    return summarize(stack, results)


def _stop_on_sigterm(*_):
    raise KeyboardInterrupt  # unwinds through the drill's clean-up, like Ctrl-C


def main(args: argparse.Namespace, settings) -> int:
    from harbor_ha.drill.netns import DrillSetupError

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    began = time.monotonic()

    def progress(run: Run) -> None:
        if not args.json:
            state = "ok" if run.ok else "FAILED: " + "; ".join(run.problems)
            print(f"harbor-ha: drill {args.stack}: {run.scenario} run {run.index + 1}: {state}", file=sys.stderr,
                  flush=True)

    try:
        summary = drill(args.stack, settings, args.runs, progress)
    except DrillSetupError as error:
        print(f"harbor-ha: drill {args.stack}: {error}", file=sys.stderr)
        return 2
    finally:
        left = netns.leftovers()
        if left:
            print(f"harbor-ha: drill left namespaces behind: {', '.join(left)}", file=sys.stderr)
    summary["seconds"] = round(time.monotonic() - began, 1)
    print(to_json(summary) if args.json else table(summary))
    return 0 if summary["ok"] else 1
