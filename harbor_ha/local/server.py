"""The emulator process: ``python -m harbor_ha.local.server --port N``. Applies the gap patches, then serves
moto on loopback only, one request at a time.

Moto's backends are not safe for concurrent requests (its documentation says so), and Terraform sends up
to ten at once. Connections are still accepted concurrently; only moto's handling of each request is
serialized (``serialized``). This did not end the occasional InvalidPermission.Duplicate / NotFound errors on
security-group rules in the master-* e2e runs: their cause is still open.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any, Callable, Iterable


def serialized(app: Callable[..., Iterable[bytes]]) -> Callable[..., list[bytes]]:
    """The WSGI application ``app``, run by one request at a time, its body produced inside the lock."""
    lock = threading.Lock()

    def run_alone(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            return list(app(environ, start_response))

    return run_alone


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harbor_ha.local.server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)

    from harbor_ha.local.moto_gaps import apply_all

    apply_all()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    server = make_server(args.host, args.port, serialized(DomainDispatcherApplication(create_backend_app)),
                         threaded=True, request_handler=MotoRequestHandler)
    print(f"harbor-ha local AWS emulator listening on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
