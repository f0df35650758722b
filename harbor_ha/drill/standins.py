"""Stand-ins for the two things a VRRP node talks to that the drill cannot run for real: the EC2 instance
metadata service (``ImdsStandIn``) and Harbor's health endpoint (``HarborHealthStandIn``). Each serves an
HTTP handler on a listening socket it is given, so one drill process serves them inside every node's
network namespace (see ``harbor_ha.drill.netns.listening_socket``); the tests use them on loopback.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HEALTHY_BODY = '{"status":"healthy","components":[{"name":"core","status":"healthy"}]}'
# What Harbor answers when one component is down: HTTP 200 still, an unhealthy overall status in the body.
UNHEALTHY_BODY = ('{"status":"unhealthy","components":[{"name":"core","status":"healthy"},'
                  '{"name":"database","status":"unhealthy","error":"timeout"}]}')


class QuietHandler(BaseHTTPRequestHandler):
    """An HTTP handler that answers with ``answer`` and logs nothing."""

    def answer(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class ImdsStandIn(QuietHandler):
    """Stands in for the EC2 instance metadata service (IMDSv2), nothing more: a session token from
    PUT /latest/api/token, then ``metadata`` (path under /latest/meta-data/ -> value) only for requests that
    present it. ``requests`` records the paths asked for. One instance's metadata per subclass (``for_instance``)."""

    TOKEN = "imds-session-token"
    metadata: dict[str, str] = {}
    requests: list[str] = []

    @classmethod
    def for_instance(cls, instance_id: str, region: str) -> type[ImdsStandIn]:
        return type(f"ImdsStandIn_{instance_id}", (cls,), {
            "metadata": {"instance-id": instance_id, "placement/region": region}, "requests": []})

    def do_PUT(self):  # noqa: N802 (http.server's naming)
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self.answer(200, self.TOKEN)
        else:
            self.answer(400, "")

    def do_GET(self):  # noqa: N802
        self.requests.append(self.path)
        if self.headers.get("X-aws-ec2-metadata-token") != self.TOKEN:
            self.answer(401, "")  # what IMDS does with IMDSv1 requests when IMDSv2 is required
            return
        value = self.metadata.get(self.path.removeprefix("/latest/meta-data/"))
        self.answer(200, value) if value is not None else self.answer(404, "")


class HarborHealthStandIn(QuietHandler):
    """Stands in for one Harbor node's ``GET /api/v2.0/health`` (served over HTTPS by ``serve_https``): HTTP
    200 always, as Harbor does, with a healthy or an unhealthy body as ``switch.healthy`` says. Any other path
    answers 404. ``served`` counts the answers (the LVS drill sees which node answered)."""

    switch: HealthSwitch

    @classmethod
    def with_switch(cls, switch: HealthSwitch) -> type[HarborHealthStandIn]:
        return type("HarborHealthStandIn", (cls,), {"switch": switch})

    def do_GET(self):  # noqa: N802
        if self.path != "/api/v2.0/health":
            self.answer(404, "")
            return
        self.switch.served += 1
        self.answer(200, HEALTHY_BODY if self.switch.healthy else UNHEALTHY_BODY)


class HealthSwitch:
    """Whether a Harbor stand-in reports itself healthy."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.healthy = True
        self.served = 0


class Served:
    """An HTTP server run in a thread until ``close``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], sock: socket.socket) -> None:
        self.server = ThreadingHTTPServer(sock.getsockname()[:2], handler, bind_and_activate=False)
        self.server.socket.close()
        self.server.socket = sock
        self.server.daemon_threads = True
        self.address = sock.getsockname()[:2]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_https(handler: type[BaseHTTPRequestHandler], sock: socket.socket, certificate: tuple[Path, Path]) -> Served:
    """Serve ``handler`` over TLS on ``sock`` with ``certificate`` (certificate file, key file)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    # The handshake happens in the connection's own thread, not in the accepting one: concurrent health checks
    # must not queue behind one slow handshake.
    return Served(handler, context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False))


def self_signed_certificate(directory: Path, addresses: list[str]) -> tuple[Path, Path]:
    """A self-signed certificate naming ``addresses`` (what the Harbor nodes make with
    ``tls_certificate = self-signed``), written as PEM into ``directory``: (certificate file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "harbor-ha drill")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]),
                       critical=False)
        .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "harbor.crt", directory / "harbor.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


@contextlib.contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler]):
    """Serve ``handler`` on an ephemeral loopback port in a thread; yields the base URL."""
    sock = socket.create_server(("127.0.0.1", 0))
    served = Served(handler, sock)
    try:
        yield f"http://127.0.0.1:{served.address[1]}"
    finally:
        served.close()
