"""Synth cost of harbor-ha's fast provider import against the naive one, measured in one run.

    pipenv run python benchmarks/synth_benchmark.py [--rounds 3] [--stacks active-active,...]

Each measured run is a fresh ``python benchmarks/synth_all.py OUTDIR`` process that synthesizes every
solution stack that exists (as ``cdktf synth`` does). ``fast`` is harbor-ha as shipped; ``naive`` sets
``HARBOR_HA_EAGER_PROVIDER=1``, which imports the binding's package root the ordinary way (in Python, and
in jsii's node process, which then runs without harbor-ha's lazy ``lib/index.js``). One unmeasured
warm-up run of each mode fills the jsii package cache and the OS file cache; then the modes alternate
(fast, naive, fast, naive ...) so that drift in the machine's load hits both alike.

Wall time: from starting the process to its exit, interpreter and jsii start-up included. CPU time (user +
system of the whole tree, from the kernel's accounting of ended children) is printed beside it: on a busy
machine it shows the work done where wall time also shows the waiting for a core; it has no target.
Peak memory: the highest sum of the resident set sizes of the whole process tree (Python plus the jsii
node process it starts), sampled every 20 ms from /proc. ``ru_maxrss`` or ``/usr/bin/time`` would report
the largest single process only, which hides whichever of the two is smaller; summing per-process peaks
would add maxima reached at different moments. Shared pages count once per process (RSS, not PSS); the
Python and node processes share little beyond libc. A spike shorter than the sampling period can be missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYNTH_ALL = HERE / "synth_all.py"
MODES = {"fast": "0", "naive": "1"}
TARGETS = {"wall": 0.3, "memory": 0.6}  # fast/naive, at most
SWEEP_SIZES = (2, 5, 10, 20)  # active-active's harbor_count, up to the setting's maximum
SWEEP_TARGET = 1.3  # wall time at the largest size / at the smallest, at most
SAMPLE_SECONDS = 0.02
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    stacks: tuple[str, ...]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                # The command name (field 2) may hold spaces: the parent pid is the 2nd field after its ")".
                ppid = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def tree_rss_bytes(root: int) -> int:
    """Summed resident set size of ``root`` and all its descendants."""
    tree, total, todo = _children(), 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(tree.get(pid, ()))
        try:
            with open(f"/proc/{pid}/statm", "rb") as statm:
                total += int(statm.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total


def measure(mode: str, env: dict[str, str], extra: list[str]) -> Run:
    with tempfile.TemporaryDirectory(prefix=f"synth-{mode}-") as outdir:
        cpu_before = _children_cpu()
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, str(SYNTH_ALL), outdir, *extra],
                                   env={**env, "HARBOR_HA_EAGER_PROVIDER": MODES[mode]},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_rss_bytes(process.pid))
                done.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, stderr = process.communicate()
        wall = time.perf_counter() - started
        cpu = _children_cpu() - cpu_before
        done.set()
        sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{mode} synth failed:\n{stderr.decode(errors='replace')[-4000:]}")
    stacks = json.loads(stdout.decode().strip().splitlines()[-1])["stacks"]
    return Run(wall_s=wall, cpu_s=cpu, peak_rss_mb=peak / 2**20, stacks=tuple(stacks))


def _children_cpu() -> float:
    """User + system CPU seconds of all ended descendants (each jsii process is waited for by its parent)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):8.2f}  min {min(values):8.2f}  max {max(values):8.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="measured runs of each mode (default 3, at least 3)")
    parser.add_argument("--stacks", help="comma-separated stack names (default: every stack that exists)")
    parser.add_argument("--sweep", action="store_true", help=f"instead: active-active (fast import) at each "
                        f"harbor_count of {', '.join(map(str, SWEEP_SIZES))}")
    options = parser.parse_args(argv)
    if options.rounds < 3:
        parser.error("--rounds must be at least 3")

    env = dict(os.environ)
    if options.sweep:
        return sweep(env, options.rounds)
    extra = [] if options.stacks is None else ["--stacks", options.stacks]
    for mode in MODES:
        print(f"warm-up: {mode} ...", file=sys.stderr, flush=True)
        measure(mode, env, extra)
    runs: dict[str, list[Run]] = {mode: [] for mode in MODES}
    for round_ in range(1, options.rounds + 1):
        for mode in MODES:
            run = measure(mode, env, extra)
            runs[mode].append(run)
            print(f"round {round_} {mode:5}: {run.wall_s:7.2f} s  {run.cpu_s:7.2f} s CPU  {run.peak_rss_mb:8.1f} MiB",
                  file=sys.stderr, flush=True)

    stacks = {run.stacks for measured in runs.values() for run in measured}
    assert len(stacks) == 1, f"the modes synthesized different stacks: {stacks}"
    print(f"synth of {', '.join(stacks.pop())} in one process, "
          f"{options.rounds} alternating runs per mode (warm jsii cache)")
    for mode, measured in runs.items():
        print(f"{mode:5} wall time (s):       {summary([r.wall_s for r in measured])}")
        print(f"{mode:5} CPU time (s):        {summary([r.cpu_s for r in measured])}")
        print(f"{mode:5} peak tree RSS (MiB): {summary([r.peak_rss_mb for r in measured])}")
    failed = False
    for metric, attribute in (("wall", "wall_s"), ("memory", "peak_rss_mb")):
        fast = statistics.median(getattr(r, attribute) for r in runs["fast"])
        naive = statistics.median(getattr(r, attribute) for r in runs["naive"])
        ratio = fast / naive
        met = ratio <= TARGETS[metric]
        failed |= not met
        print(f"ratio fast/naive {metric:6}: {ratio:.2f} (target <= {TARGETS[metric]}: {'met' if met else 'NOT met'})")
    return 1 if failed else 0


def sweep(env: dict[str, str], rounds: int) -> int:
    """Synth of active-active at each of ``SWEEP_SIZES``, sizes alternating within each round (after one
    warm-up run), with the ratio of the largest size's median wall time to the smallest's."""
    def extra(size: int) -> list[str]:
        return ["--stacks", "active-active", "--harbor-count", str(size)]

    print("warm-up ...", file=sys.stderr, flush=True)
    measure("fast", env, extra(SWEEP_SIZES[0]))
    runs: dict[int, list[Run]] = {size: [] for size in SWEEP_SIZES}
    for round_ in range(1, rounds + 1):
        for size in SWEEP_SIZES:
            run = measure("fast", env, extra(size))
            runs[size].append(run)
            print(f"round {round_} harbor_count {size:2}: {run.wall_s:7.2f} s  {run.cpu_s:7.2f} s CPU  "
                  f"{run.peak_rss_mb:8.1f} MiB", file=sys.stderr, flush=True)
    print(f"synth of active-active by harbor_count, {rounds} alternating runs per size (fast import, warm jsii "
          f"cache; load average {os.getloadavg()[0]:.2f})")
    print("harbor_count  wall median (s)  CPU median (s)  peak tree RSS median (MiB)")
    for size, measured in runs.items():
        print(f"{size:12}  {statistics.median(r.wall_s for r in measured):15.2f}  "
              f"{statistics.median(r.cpu_s for r in measured):14.2f}  "
              f"{statistics.median(r.peak_rss_mb for r in measured):26.1f}")
    largest, smallest = (statistics.median(r.wall_s for r in runs[s]) for s in (SWEEP_SIZES[-1], SWEEP_SIZES[0]))
    ratio = largest / smallest
    met = ratio <= SWEEP_TARGET
    print(f"ratio wall {SWEEP_SIZES[-1]}/{SWEEP_SIZES[0]}: {ratio:.2f} (target <= {SWEEP_TARGET}: "
          f"{'met' if met else 'NOT met'})")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
