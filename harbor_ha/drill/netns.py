"""Network namespaces for the drill: one per node plus one "LAN" namespace holding the bridge that joins
them (the subnet; taking a node's port off the bridge is a cut link), all named ``hhd<pid>-<n>-...`` after
the drill process so that parallel drills do not meet and a drill's leftovers are recognisable (a later
drill removes those of a process that no longer runs, and what still ran inside them).

``tcp_socket`` opens a socket inside a namespace from this process (a helper thread enters the
namespace, makes it, and exits; the socket stays in it), so one drill process serves the stand-ins of every
node. ``Relay`` forwards connections made inside a namespace to an address of this process's own namespace:
it stands in for the route from a node to the EC2 API endpoint, here the local emulator on loopback.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

NETNS_DIR = Path("/run/netns")
PREFIX = "hhd"
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class DrillSetupError(RuntimeError):
    """The drill cannot build its namespaces (not root, a missing tool)."""


def ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise DrillSetupError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


_drills = itertools.count()


def prefix(pid: int | None = None) -> str:
    """What the names of ``pid``'s drills start with (default: this process)."""
    return f"{PREFIX}{os.getpid() if pid is None else pid}-"


def new_prefix() -> str:
    """The name prefix of one more drill of this process (several may run at once)."""
    return f"{prefix()}{next(_drills)}-"


class Namespace:
    """One network namespace, deleted by ``delete`` (which also removes the veth ends inside it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        delete(name)
        ip("netns", "add", name)
        ip("-n", name, "link", "set", "lo", "up")

    def ip(self, *args: str) -> str:
        return ip("-n", self.name, *args)

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def delete(self) -> None:
        delete(self.name)


def delete(name: str) -> None:
    """Kill whatever still runs inside namespace ``name``, then delete it."""
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


def leftovers(pid: int | None = None) -> list[str]:
    """Namespaces of the drill run by ``pid`` (default: this process) that still exist."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix(pid)))


def remove_stale() -> list[str]:
    """Delete the namespaces of drill processes that no longer run (a drill killed before it could clean up)."""
    removed = []
    for path in NETNS_DIR.iterdir() if NETNS_DIR.is_dir() else ():
        owner = path.name[len(PREFIX):].split("-")[0]
        if path.name.startswith(PREFIX) and owner.isdigit() and not Path(f"/proc/{owner}").exists():
            delete(path.name)
            removed.append(path.name)
    return removed


def in_namespace(namespace: str, function):
    """``function()`` run in a thread inside ``namespace`` (programs it starts run there too); its result, or
    the exception it raised, raised here."""
    made: dict[str, object] = {}

    def enter_and_call() -> None:
        try:
            fd = os.open(NETNS_DIR / namespace, os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {namespace}")
            finally:
                os.close(fd)
            made["result"] = function()
        except Exception as error:  # noqa: BLE001 - handed to the caller's thread

            made["error"] = error

    # The thread's namespace changes, not the process's; the thread ends, what it made stays in the namespace.
    thread = threading.Thread(target=enter_and_call)
    thread.start()
    thread.join()
    if "error" in made:
        raise made["error"]  # type: ignore[misc]
    return made["result"]


def tcp_socket(namespace: str) -> socket.socket:
    """A new TCP socket of ``namespace`` (a socket belongs to the namespace it was made in, whichever thread
    uses it later)."""
    return in_namespace(namespace, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))


def listening_socket(namespace: str, host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host:port`` inside ``namespace``."""
    sock = tcp_socket(namespace)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
    except OSError as error:
        sock.close()
        raise DrillSetupError(f"cannot listen on {host}:{port} in {namespace}: {error}") from None
    return sock


class Relay:
    """Forwards every connection accepted on ``sock`` (inside a namespace) to ``target`` (host, port) in this
    process's namespace, until ``close``."""

    def __init__(self, sock: socket.socket, target: tuple[str, int]) -> None:
        self._sock, self._target, self._closed = sock, target, False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._closed = True
        self._sock.close()
