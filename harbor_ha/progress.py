"""Progress of a terraform apply or destroy, read from terraform's machine-readable UI (``-json``: one JSON
message per line, https://developer.hashicorp.com/terraform/internals/machine-readable-ui).

    resources done of planned, elapsed time, what is under way

In a terminal it is one line that updates in place; in a log (not a TTY) one plain line per finished
resource, so a CI log reads top to bottom. Terraform's diagnostics (errors, warnings) are printed in full.

    from harbor_ha.progress import follow
    code = follow(["terraform", "apply", "-json", "-auto-approve"], cwd=workdir, env=env, label="deploying")
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, TextIO

PREFIX = "harbor-ha"
# What terraform's "planned_change" action becomes once applied, for the plain lines.
DONE = {"create": "created", "update": "updated", "delete": "destroyed", "replace": "replaced"}


@dataclass
class Progress:
    """Consumes terraform ``-json`` lines (``feed``) and reports on ``out``."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    tty: bool | None = None
    clock: Callable[[], float] = time.monotonic
    label: str = "applying"
    planned: int = 0
    done: int = 0
    failed: int = 0
    running: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    returncode: int | None = None
    finished: object = None
    """How the terraform run ended (``harbor_ha.terraform_run.Finished``), set by ``follow``."""

    def __post_init__(self) -> None:
        if self.tty is None:
            self.tty = self.out.isatty()
        self.started = self.clock()
        self._line_shown = False

    def feed(self, line: str) -> None:
        """One line of terraform's output; lines that are not JSON messages are passed through."""
        try:
            message = json.loads(line)
        except ValueError:
            if line.strip():
                self._print(line.rstrip("\n"))
            return
        if not isinstance(message, dict):
            return
        kind, hook = message.get("type"), message.get("hook") or {}
        address = (hook.get("resource") or {}).get("addr", "")
        if kind == "change_summary" and (message.get("changes") or {}).get("operation") == "plan":
            changes = message["changes"]
            self.planned = sum(changes.get(k, 0) for k in ("add", "change", "remove", "import"))
            self._print(f"{PREFIX}: {self.label}: {self._plan_text(changes)}")
        elif kind == "refresh_start":
            self._status(f"reading {address}")
        elif kind == "apply_start":
            self.running[address] = self.clock()
            self._status(f"{hook.get('action', 'applying')} {address}")
        elif kind == "apply_progress":
            self._status(f"{hook.get('action', 'applying')} {address} ({int(hook.get('elapsed_seconds', 0))}s)")
        elif kind == "apply_complete" and hook.get("action") == "read":
            # A data source read while planning: not one of the planned changes.
            self.running.pop(address, None)
        elif kind == "apply_complete":
            self.done += 1
            took = self.clock() - self.running.pop(address, self.clock())
            self._event(f"{DONE.get(hook.get('action'), hook.get('action', 'done'))} {address} ({took:.0f}s)")
        elif kind == "apply_errored":
            self.failed += 1
            self.running.pop(address, None)
            self._event(f"FAILED {address}")
        elif kind == "diagnostic":
            diagnostic = message.get("diagnostic") or {}
            text = f"{diagnostic.get('severity', 'error')}: {diagnostic.get('summary', '')}"
            if diagnostic.get("detail"):
                text += f"\n  {diagnostic['detail']}"
            if diagnostic.get("address"):
                text += f"\n  (resource {diagnostic['address']})"
            if diagnostic.get("severity") == "error":
                self.errors.append(text)
            self._print(f"{PREFIX}: terraform {text}")
        elif kind == "change_summary":
            self._print(f"{PREFIX}: {self.label}: finished, {self.counter()}: {message.get('@message', '')}")

    def counter(self) -> str:
        elapsed = int(self.clock() - self.started)
        total = f"{self.done}/{self.planned}" if self.planned else f"{self.done}"
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{total} resources{failed}, {elapsed // 60:d}:{elapsed % 60:02d} elapsed"

    def close(self) -> None:
        if self.tty and self._line_shown:
            self.out.write("\n")
            self.out.flush()
            self._line_shown = False

    @staticmethod
    def _plan_text(changes: dict) -> str:
        parts = [f"{changes.get(k, 0)} to {word}" for k, word in
                 (("add", "add"), ("change", "change"), ("remove", "destroy")) if changes.get(k)]
        return "planned " + (", ".join(parts) if parts else "no changes")

    def _status(self, what: str) -> None:
        if self.tty:
            self._show(f"{PREFIX}: [{self.counter()}] {what}")

    def _event(self, what: str) -> None:
        if self.tty:
            self._show(f"{PREFIX}: [{self.counter()}] {what}")
        else:
            self._print(f"{PREFIX}: [{self.counter()}] {what}")

    def _show(self, text: str) -> None:
        self.out.write("\r\x1b[K" + text)
        self.out.flush()
        self._line_shown = True

    def _print(self, text: str) -> None:
        if self.tty and self._line_shown:
            self.out.write("\r\x1b[K")
            self._line_shown = False
        self.out.write(text + "\n")
        self.out.flush()


def follow(argv: Iterable[str], *, cwd, env: dict[str, str], label: str, out: TextIO | None = None) -> Progress:
    """Run ``argv`` (a terraform command with ``-json``) and report its progress; returns the finished
    ``Progress`` with ``returncode`` set and ``finished``, how the run ended (harbor_ha.terraform_run: an
    interrupt of harbor-ha stops terraform gracefully)."""
    from harbor_ha import terraform_run

    progress = Progress(out=out or sys.stdout, label=label)
    try:
        progress.finished = terraform_run.run(list(argv), cwd=str(cwd), env=env, capture=False, on_line=progress.feed)
        progress.returncode = progress.finished.code
    finally:
        progress.close()
    return progress
