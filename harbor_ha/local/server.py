"""The emulator process: ``python -m harbor_ha.local.server --port N``. Applies the gap patches, then serves
moto on loopback only, one request at a time, answering an SDK's retry with what its first attempt got.

Moto's backends are not safe for concurrent requests (its documentation says so), and Terraform sends up
to ten at once. Connections are still accepted concurrently; only moto's handling of each request is
serialized (``serialized``).

Under load, the AWS SDK for Go (Terraform's provider) now and then fails to read an answer moto has already
given ("use of closed network connection" on an HTTP 200, aws/aws-sdk-go-v2#1825) and sends the same request
again. For a call that is not idempotent the second attempt fails where the first succeeded:
AuthorizeSecurityGroupIngress answers InvalidPermission.Duplicate, RevokeSecurityGroupIngress
InvalidPermission.NotFound, and Terraform stops. Every AWS SDK marks the attempts of one call with the same
``amz-sdk-invocation-id`` header and counts them in ``amz-sdk-request: attempt=N``, so the emulator keeps the
answers it gave (``replaying_retries``) and hands a retry its first attempt's answer.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
from collections import OrderedDict
from typing import Any, Callable, Iterable

# How many answers the emulator keeps for retries: far more than the calls in flight during a deploy.
REMEMBERED_ANSWERS = 4096
# Answers larger than this (object downloads) are not kept; their calls are reads that a retry repeats safely.
REMEMBERED_ANSWER_BYTES = 1 << 20

WsgiApp = Callable[..., Iterable[bytes]]


def serialized(app: WsgiApp) -> Callable[..., list[bytes]]:
    """The WSGI application ``app``, run by one request at a time, its body produced inside the lock."""
    lock = threading.Lock()

    def run_alone(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            return list(app(environ, start_response))

    return run_alone


def _attempt(environ: dict[str, Any]) -> int:
    match = re.search(r"attempt=(\d+)", environ.get("HTTP_AMZ_SDK_REQUEST", ""))
    return int(match.group(1)) if match else 1


def replaying_retries(app: WsgiApp, log: Callable[[str], None] = lambda _: None) -> Callable[..., list[bytes]]:
    """``app``, except that an SDK retry of a call ``app`` has answered (below 500) gets that answer again.

    Must run inside ``serialized``: a retry that arrives while its first attempt is still being handled then
    waits for it and finds its answer."""
    answers: OrderedDict[str, tuple[str, list, list[bytes]]] = OrderedDict()

    def run(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        invocation, attempt = environ.get("HTTP_AMZ_SDK_INVOCATION_ID"), _attempt(environ)
        if invocation in answers and attempt > 1:
            status, headers, body = answers[invocation]
            log(f"attempt {attempt} of SDK call {invocation} gets the answer of its first attempt ({status})")
            start_response(status, headers)
            return body
        given: list = []

        def keep(status: str, headers: list, *exc_info: Any) -> Any:
            given[:] = [status, list(headers)]
            return start_response(status, headers, *exc_info)

        body = list(app(environ, keep))
        if invocation and given and int(given[0].split()[0]) < 500 and sum(map(len, body)) <= REMEMBERED_ANSWER_BYTES:
            answers[invocation] = (given[0], given[1], body)
            if len(answers) > REMEMBERED_ANSWERS:
                answers.popitem(last=False)
        return body

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harbor_ha.local.server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)

    from harbor_ha.local.moto_gaps import apply_all

    apply_all()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = replaying_retries(DomainDispatcherApplication(create_backend_app),
                            log=lambda line: print(line, file=sys.stderr, flush=True))
    server = make_server(args.host, args.port, serialized(app), threaded=True, request_handler=MotoRequestHandler)
    print(f"harbor-ha local AWS emulator listening on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
