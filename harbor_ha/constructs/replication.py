"""Harbor replication between standalone Harbors, set up at boot by the replication configurator
(``harbor_ha/replication.py``), which the source node fetches from a private bucket of its own and runs
once Harbor is up. (It is too large for EC2's 16 KiB user-data beside Harbor's own boot files.)

The source node pushes to every peer: an event-based policy plus a scheduled full sync that heals what
the events missed. It signs in to each peer with that peer's admin password, read from Secrets Manager at
boot (the source's role may read exactly those secrets). The same run can be repeated by hand:
``harbor-ha replicate --local ... --peer ...`` sends nothing it already did.

With ``pull_only_peers`` each peer (a master-slaves replica) also fetches the configurator and runs it as
its pull-only guard (``replication.py --pull-only``) at boot and then every five minutes from a systemd
timer: users keep Guest roles at most, so only the replication account pushes.

TLS (``tls_trust="pinned"``, the default): a node without a certificate of the user's makes a self-signed
one, valid for its public and private addresses and 127.0.0.1. Each peer puts its certificate into the carrier
bucket (``certificates/<peer>.pem``, the one object its role may write there) right after its Harbor starts;
the source gathers them with its own into one CA bundle (``gather-peer-certificates.sh``, which waits for
peers still booting) that the configurator verifies with and hands to the source's Harbor as each registry
endpoint's ``ca_certificate``. So replication is verified end to end without a deployment-wide CA.
A replaced peer publishes its new certificate at boot; until the source gathers again and re-runs the
configurator (``run-step.sh gather-peer-certificates.sh ...`` then the configurator's command, which updates
the endpoint's ``ca_certificate``), replication to that peer fails verification instead of trusting it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from harbor_ha.aws import Construct, Fn, S3Object
from harbor_ha.cloud_init import CloudConfig, WriteFile
from harbor_ha.constructs.data_tier import require
from harbor_ha.constructs.harbor_node import StandaloneHarborNode
from harbor_ha.constructs.interfaces import AccessLogSink
from harbor_ha.rules import REPLICATION_CONFIGURATOR_KEY, carrier_name
from harbor_ha.constructs.storage import RegistryStorage, RegistryStorageProps
from harbor_ha.harbor_boot import SCRIPT_DIR, boot_script
from harbor_ha.harbor_config import STATE_DIR

CONFIGURATOR = Path(__file__).resolve().parent.parent / "replication.py"
CONFIGURATOR_PATH = "/opt/harbor-ha/replication.py"
TLS_TRUST = ("pinned", "system", "none")
OWN_CERTIFICATE = f"{STATE_DIR}/tls/server.crt"
PEER_BUNDLE = f"{STATE_DIR}/replication-ca.pem"
RUN_STEP = f"{SCRIPT_DIR}/run-step.sh"


@dataclass(frozen=True)
class HarborReplicationProps:
    """Who replicates to whom."""

    source: StandaloneHarborNode
    """The ``StandaloneHarborNode`` that pushes (the master)."""
    peers: Sequence[tuple[str, StandaloneHarborNode]]
    """``(name, StandaloneHarborNode)`` pairs that receive; names are lower-case letters, digits, '-'."""
    over_internet: bool = False
    """Reach the peers at their Elastic IPs (another region) instead of their private addresses. Default False."""
    name: str = "harbor"
    """Names the bucket that carries the configurator (``<name>-c-registry-...``, so 25 characters at most).
    Default ``harbor``."""
    force_destroy: bool = False
    """Let ``terraform destroy`` delete that bucket while it holds the configurator. Default False."""
    access_logs: AccessLogSink | None = None
    """A ``LogBucket`` in the source's region for that bucket's access logs. Default none."""
    schedule: str = "0 0 * * * *"
    """Harbor cron (6 fields) of the full sync. Default hourly."""
    pull_only_peers: bool = False
    """Keep every peer pull-only for its users (Guest roles, admin-only projects; see module doc). Default
    False: master-master's peers take pushes too."""
    tls_trust: str = "pinned"
    """How the source verifies the HTTPS certificates of the peers (and the nodes their own Harbor):
    ``pinned`` (default) trusts exactly the certificate each node serves, which every peer puts into the
    carrier bucket at boot (nodes with self-signed certificates, valid for their addresses); ``system``:
    the system trust store (every node serves a CA-issued certificate for the address it is reached at);
    ``none``: no verification (a certificate that names a host while the nodes are reached at addresses)."""

    def __post_init__(self) -> None:
        require(len(self.peers) >= 1, "peers", len(self.peers), "one or more (name, node) pairs")
        names = [name for name, _ in self.peers]
        require(len(set(names)) == len(names) and all(n and n.replace("-", "").isalnum() and n == n.lower()
                                                     for n in names), "peers", names,
                "distinct names of lower-case letters, digits and '-'")
        require(len(self.schedule.split()) == 6, "schedule", self.schedule, "a 6-field Harbor cron")
        require(self.tls_trust in TLS_TRUST, "tls_trust", self.tls_trust, " or ".join(TLS_TRUST))


class HarborReplication(Construct):
    """Attributes: ``command`` (the configurator's argv, as run at boot)."""

    def __init__(self, scope: Construct, id_: str, *, props: HarborReplicationProps) -> None:
        super().__init__(scope, id_)
        source = props.source
        carrier = RegistryStorage(self, "carrier", props=RegistryStorageProps(
            name=carrier_name(props.name), force_destroy=props.force_destroy, access_logs=props.access_logs))
        configurator = S3Object(self, "configurator", bucket=carrier.bucket_name, key=REPLICATION_CONFIGURATOR_KEY,
                                content=CONFIGURATOR.read_text(), content_type="text/x-python")
        def carried(key: str) -> str:
            return Fn.join("", ["s3://", carrier.bucket_name, "/", key])

        def copy(source: str, destination: str) -> tuple[str, ...]:
            return ("aws", "s3", "cp", "--only-show-errors", "--region", carrier.region, source, destination)

        fetch = copy(carried(configurator.key), CONFIGURATOR_PATH)
        pinned = props.tls_trust == "pinned"
        # What the configurator and the pull-only guard verify HTTPS with.
        source_tls: tuple[str, ...] = {"pinned": ("--ca-bundle", PEER_BUNDLE), "system": (),
                                       "none": ("--insecure",)}[props.tls_trust]
        own_tls: tuple[str, ...] = ("--ca-bundle", OWN_CERTIFICATE) if pinned else source_tls

        command = ["python3", CONFIGURATOR_PATH, "--local", "https://127.0.0.1",
                   "--local-secret", source.admin_secret_arn, "--schedule", props.schedule]
        for name, peer in props.peers:
            source.needed_at_boot(peer.grant_read_admin_secret(source.role))
            if props.over_internet:
                peer.allow_from_cidrs([Fn.join("", [source.public_ip, "/32"])])
                address = peer.public_ip
            else:
                peer.allow_from(source)
                address = peer.private_ip
            command += ["--peer", Fn.join("", [f"{name}=https://", address]),
                        "--peer-secret", Fn.join("", [f"{name}=", peer.admin_secret_arn])]
            if pinned:
                key = f"certificates/{name}.pem"
                peer.needed_at_boot(carrier.grant_put_object(peer.role, key, f"publish-{name}-certificate"))
                peer.add_cloud_config(CloudConfig(commands=(copy(OWN_CERTIFICATE, carried(key)),)))
        self.command = (*command, *source_tls)

        source.needed_at_boot(carrier.grant_read(source.role))
        gather = (RUN_STEP, "gather-peer-certificates.sh", carrier.region, carrier.bucket_name, PEER_BUNDLE,
                  *(name for name, _ in props.peers))
        source.add_cloud_config(CloudConfig(files=(boot_script("gather-peer-certificates.sh"),) if pinned else (),
                                            commands=(fetch, *((gather,) if pinned else ()), self.command)))
        if props.pull_only_peers:
            for _, peer in props.peers:
                guard = ("/usr/bin/python3", CONFIGURATOR_PATH, "--pull-only", "--local", "https://127.0.0.1",
                         "--local-secret", peer.admin_secret_arn, *own_tls)
                peer.needed_at_boot(carrier.grant_read(peer.role))
                peer.add_cloud_config(pull_only_guard(fetch, guard))


GUARD_UNIT = "harbor-ha-pull-only"
GUARD_PERIOD = "5min"


def pull_only_guard(fetch: tuple[str, ...], guard: tuple[str, ...]) -> CloudConfig:
    """Fetch the configurator, run the guard once now and then every ``GUARD_PERIOD`` from a systemd timer
    (new projects arrive by replication and roles can be given at any time)."""
    service = WriteFile(f"/etc/systemd/system/{GUARD_UNIT}.service", "\n".join([
        "[Unit]",
        "Description=harbor-ha: keep this Harbor replica pull-only for its users",
        "After=network-online.target docker.service",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        "ExecStart=" + " ".join(guard),
        "",
    ]))
    timer = WriteFile(f"/etc/systemd/system/{GUARD_UNIT}.timer", "\n".join([
        "[Unit]",
        f"Description=harbor-ha: run {GUARD_UNIT}.service every {GUARD_PERIOD}",
        "",
        "[Timer]",
        f"OnUnitActiveSec={GUARD_PERIOD}",
        f"OnBootSec={GUARD_PERIOD}",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ]))
    return CloudConfig(files=(service, timer), commands=(
        fetch, ("systemctl", "daemon-reload"), ("systemctl", "start", f"{GUARD_UNIT}.service"),
        ("systemctl", "enable", "--now", f"{GUARD_UNIT}.timer")))
