"""Run one terraform command as a child that an interrupt stops cleanly.

Terraform runs in a session of its own, so a terminal's Ctrl-C (sent to the whole foreground process group)
does not reach it directly: a second SIGINT would make terraform quit at once, without saving what it has
done. Instead harbor-ha forwards the SIGINT or SIGTERM it receives (from a terminal, a CI runner or a
supervisor, which signal harbor-ha alone) as one SIGINT, terraform's graceful stop: it finishes the calls in
flight, saves its state and releases the state lock. If it has not ended after ``grace_s``, its process
group (terraform and its provider plugins) is killed. Either way harbor-ha waits for it and then ends what is
left in its group, so nothing terraform started outlives harbor-ha.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

FORWARDED = (signal.SIGINT, signal.SIGTERM)
# Long enough for terraform's graceful stop (the calls in flight end, the state is written), bounded so that
# a hung provider cannot keep harbor-ha from exiting.
GRACE_S = 120.0


@dataclass(frozen=True)
class Finished:
    """How a terraform command ended: exit ``code`` (negative: killed by that signal), captured output (empty
    when streamed), the signal harbor-ha received while it ran (0: none) and whether it had to be killed."""

    code: int
    out: str
    err: str
    received: int = 0
    killed: bool = False


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def run(argv: list[str], *, cwd: str, env: dict[str, str], capture: bool, grace_s: float = GRACE_S,
        on_line: Callable[[str], None] | None = None) -> Finished:
    """Run ``argv`` in ``cwd`` with ``env``; output captured, streamed to this process's stdout/stderr, or with
    ``on_line`` handed over line by line (stderr merged into stdout)."""
    if on_line:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, text=True, bufsize=1)
    else:
        pipe = subprocess.PIPE if capture else None
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=pipe, stderr=pipe, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    received: list[int] = []
    killed = threading.Event()

    def kill_group() -> None:
        killed.set()
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(grace_s, kill_group)
    timer.daemon = True

    def forward(number: int, _frame) -> None:
        received.append(number)
        if len(received) == 1:
            process.send_signal(signal.SIGINT)
            timer.start()

    # Signal handlers can only be set from the main thread; elsewhere the main thread gets the signals anyway.
    in_main = threading.current_thread() is threading.main_thread()
    previous = {number: signal.signal(number, forward) for number in FORWARDED} if in_main else {}
    try:
        if on_line:
            for line in process.stdout:
                on_line(line)
            process.wait()
            out = err = b""
        else:
            out, err = process.communicate()
    finally:
        timer.cancel()
        for number, handler in previous.items():
            signal.signal(number, handler)
    timed_out = killed.is_set()
    if received:  # what terraform started and left behind when it stopped (a provisioner's command)
        kill_group()
        _wait_until_ended(process.pid)
    return Finished(process.returncode, (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace"),
                    received[0] if received else 0, timed_out)


def _wait_until_ended(group: int, timeout: float = 10) -> None:
    """Until no live process is left in ``group`` (a killed one takes a moment to end on a busy machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(
            _live_in_group(entry, group) for entry in Path("/proc").iterdir() if entry.name.isdigit()):
        time.sleep(0.05)


def _live_in_group(entry: Path, group: int) -> bool:
    try:
        fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return int(fields[2]) == group and fields[0] != "Z"
