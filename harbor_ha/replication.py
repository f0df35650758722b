"""Configures Harbor replication between the Harbors of the master-slaves and master-master topologies.

Run against one Harbor (the "local" one) with the Harbors it must push to (its "peers"):

* master-slaves: run it for the master, with every replica as a peer;
* master-master: run it for each Harbor, with the other one as its peer.

For each peer it keeps, on the local Harbor (Harbor REST API v2.0):

* one registry endpoint ``harbor-ha-<peer>`` of type ``harbor``, holding the peer's robot or admin credential;
* a push policy ``harbor-ha-<peer>-event`` with an ``event_based`` trigger: every push, and by default every
  deletion, is replicated at once, so that peers serve what this Harbor serves;
* a push policy ``harbor-ha-<peer>-scheduled`` with a ``scheduled`` trigger (default hourly) that replicates
  everything again. Event-based replication drops the events that happen while the peer is down, and two-way
  sync then diverges (goharbor#21119); the full sync heals that. By default it does not replicate deletions:
  in master-master it would delete from the peer what the peer received while this Harbor was down. So a
  deletion missed while a peer was down is not healed (in master-master the peer's full sync even restores
  it): delete again once both are up. It runs with ``single_active_replication`` so that a full sync longer
  than the schedule period does not overlap itself (not the event policy: that option would drop events).

Replication loops in master-master: both Harbors push, neither pulls (a pull policy on top would copy each
artifact twice). An artifact replicated A -> B raises a push event on B whose replication back to A finds
the same digest there and skips it without pushing, so nothing ping-pongs; a replicated deletion likewise
finds nothing left to delete. ``override`` is on so that a tag moved on one Harbor moves on the other.

With ``--pull-only`` it instead keeps the local Harbor, a master-slaves replica, pull-only for its users
(``PullOnlyGuard``): only admins create projects, project members who may push become Guests, robots that
may push are disabled. harbor-ha runs that on each replica at boot and every five minutes.

Idempotent: existing registries and policies are looked up by name; a second run sends no POST, and a
registry or policy whose fields differ from what this module wants is updated with PUT. Harbor never returns
a registry's secret, so a rotated password with an unchanged user name needs ``--refresh-credentials``.

The peer's account is a system administrator or a system robot account allowed to create projects and
push and delete artifacts in every project (replication creates missing projects on the destination).

This file runs standalone on a bare Amazon Linux 2023 node: Python 3.9+ standard library only, plus boto3
when importable, else the ``aws`` CLI, for AWS Secrets Manager. For example, on the master at boot::

    python3 /opt/harbor-ha/replication.py --local https://harbor-master.example.com \
        --local-secret arn:aws:secretsmanager:eu-west-1:123456789012:secret:harbor-ha/admin \
        --peer replica-1=https://harbor-replica-1.example.com \
        --peer-secret replica-1=arn:aws:secretsmanager:eu-west-1:123456789012:secret:harbor-ha/robot \
        --ca-bundle /etc/harbor-ha/ca.pem --region eu-west-1
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, Callable, Optional

API = "/api/v2.0"
HOURLY = "0 0 * * * *"  # Harbor crons have 6 fields, seconds first
ALL_REPOSITORIES = "**"
NAME_PREFIX = "harbor-ha-"
PAGE_SIZE = 100  # the largest page Harbor serves
DESCRIPTION = "Managed by harbor-ha replication.py; edits are reverted at its next run."
_PEER_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")


class ReplicationError(Exception):
    """A problem the user can fix; the message says what happened and what to do next."""


class InvalidSetting(ReplicationError, ValueError):
    """A bad option or argument; the message names it, its value and what is allowed."""


class _Unreachable(ReplicationError):
    """No HTTP answer at all (connection refused, DNS, timeout): worth retrying while Harbor boots."""


class HarborHttpError(ReplicationError):
    """Harbor answered with an HTTP error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Credential:
    """A Harbor user name (admin or ``robot$...``) and its password or robot secret."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Peer:
    """A Harbor the local Harbor pushes to. ``name`` is lower-case letters, digits and ``.-_``."""

    name: str
    url: str
    credential: Credential


@dataclass(frozen=True)
class TlsOptions:
    """How HTTPS peers are verified.

    ca_bundle: PEM file of the CAs that signed the Harbors' certificates (self-signed Harbors); default
        None = the system trust store. Also given to the local Harbor as the peers' ``ca_certificate``.
    insecure: skip certificate verification here and in the local Harbor's registry endpoints; default False.
    """

    ca_bundle: Optional[str] = None
    insecure: bool = False

    def context(self) -> ssl.SSLContext:
        if self.insecure:
            return ssl._create_unverified_context()  # noqa: S323 - only on explicit --insecure
        try:
            return ssl.create_default_context(cafile=self.ca_bundle)
        except (OSError, ssl.SSLError) as err:
            raise InvalidSetting(f"cannot read the CA bundle {self.ca_bundle!r}: {err}; "
                                   "pass a PEM file with --ca-bundle") from err

    def ca_certificate(self) -> Optional[str]:
        if self.ca_bundle is None or self.insecure:
            return None
        with open(self.ca_bundle, encoding="utf-8") as pem:
            return pem.read()


@dataclass(frozen=True)
class ReplicationOptions:
    """What the policies replicate.

    schedule: 6-field Harbor cron of the full sync; default hourly (``0 0 * * * *``).
    repositories: name filter of both policies; default ``**`` (every repository of every project).
    event_deletion: the event policy replicates deletions; default True (replicas mirror what was deleted).
    scheduled_deletion: the full sync deletes what the local Harbor lacks; default False (see module doc).
    """

    schedule: str = HOURLY
    repositories: str = ALL_REPOSITORIES
    event_deletion: bool = True
    scheduled_deletion: bool = False

    def __post_init__(self) -> None:
        if len(self.schedule.split()) != 6:
            raise InvalidSetting(f"schedule {self.schedule!r} is not a 6-field Harbor cron "
                                   f"(seconds minutes hours day-of-month month day-of-week), e.g. {HOURLY!r}")
        if not self.repositories.strip():
            raise InvalidSetting("repositories filter is empty; use '**' for every repository")


class HarborClient:
    """Minimal JSON client of one Harbor's REST API v2.0."""

    def __init__(self, name: str, url: str, credential: Optional[Credential], *,
                 context: ssl.SSLContext, request_timeout: float = 15.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidSetting(f"{name}: URL {url!r} is not http(s)://host[:port]")
        self.name = name
        self.url = url.rstrip("/")
        self.credential = credential
        self._context = context
        self._timeout = request_timeout

    def call(self, method: str, path: str, *, query: Optional[dict] = None, body: Any = None,
             auth: bool = True) -> tuple[Any, Message]:
        """Sends one request; returns the decoded body (JSON if it parses, else text) and the headers."""
        target = f"{self.url}{API}{path}"
        if query:
            target += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(target, method=method, headers={"Accept": "application/json"})
        if body is not None:
            request.data = json.dumps(body).encode()
            request.add_header("Content-Type", "application/json")
        if auth and self.credential:
            token = f"{self.credential.username}:{self.credential.password}".encode()
            request.add_header("Authorization", "Basic " + base64.b64encode(token).decode())
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=self._context) as response:
                return _decode(response.read()), response.headers
        except urllib.error.HTTPError as err:
            raise self._http_error(method, path, err.code, _decode(err.read())) from None
        except OSError as err:  # URLError wraps connection and TLS failures
            reason = err.reason if isinstance(err, urllib.error.URLError) else err
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise ReplicationError(f"{self.name} ({self.url}): certificate not trusted "
                                       f"({reason.verify_message}); pass the CA that signed it with "
                                       "--ca-bundle") from None
            raise _Unreachable(f"{self.name} ({self.url}) is unreachable: {reason}") from None

    def _http_error(self, method: str, path: str, status: int, body: Any) -> HarborHttpError:
        user = self.credential.username if self.credential else "(anonymous)"
        if status == 401:
            message = (f"{self.name} ({self.url}) rejected the credential of user {user!r} (HTTP 401): "
                       "correct the username/password in its Secrets Manager secret and run again")
        elif status == 403:
            message = (f"{self.name} ({self.url}): user {user!r} may not {method} {API}{path} (HTTP 403): use "
                       "a Harbor system administrator of it")
        else:
            message = (f"{self.name} ({self.url}): {method} {API}{path} answered HTTP {status}: "
                       f"{_harbor_message(body)}")
        return HarborHttpError(message, status)

    def list_all(self, path: str, query: Optional[dict] = None) -> list[dict]:
        """Every item of a paged list endpoint, page by page."""
        found, page = [], 1
        while True:
            items, _ = self.call("GET", path, query={**(query or {}), "page": page, "page_size": PAGE_SIZE})
            items = items or []
            found += items
            if len(items) < PAGE_SIZE:
                return found
            page += 1

    def list_by_name(self, path: str, name: str) -> list[dict]:
        """Every item of a paged list endpoint whose ``name`` is exactly ``name``."""
        return [item for item in self.list_all(path, {"q": f"name={name}"}) if item.get("name") == name]


def _decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _harbor_message(body: Any) -> str:
    if isinstance(body, dict) and body.get("errors"):
        return "; ".join(str(error.get("message", error)) for error in body["errors"])
    return str(body)[:300] or "(empty answer)"


def _created_id(headers: Message) -> Optional[int]:
    match = re.search(r"/(\d+)/?$", headers.get("Location", ""))
    return int(match.group(1)) if match else None


class _LocalHarborTask:
    """What every job on one ("local") Harbor needs: its client, patient waiting until it is healthy, and
    progress lines. See the subclasses for the arguments."""

    def __init__(self, local_url: str, local_credential: Credential, *, tls: Optional[TlsOptions],
                 timeout: float, initial_delay: float, max_delay: float, log: Callable[[str], None]) -> None:
        if timeout <= 0:
            raise InvalidSetting(f"timeout must be a positive number of seconds, got {timeout}")
        self.tls = tls or TlsOptions()
        self.timeout = timeout
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.log = log
        self._context = self.tls.context()
        self.local = HarborClient("local Harbor", local_url, local_credential, context=self._context)

    def wait_until_healthy(self, harbor: HarborClient, deadline: Optional[float] = None) -> None:
        """Polls ``/ping`` (answers ``Pong``) and ``/health`` (HTTP 200 even when unhealthy: read the status)
        with exponential backoff until both are good or the ``time.monotonic()`` deadline has passed
        (default: ``timeout`` from now)."""
        deadline = time.monotonic() + self.timeout if deadline is None else deadline
        delay, attempt = self.initial_delay, 0
        self.log(f"waiting for {harbor.name} at {harbor.url} (up to {max(deadline - time.monotonic(), 0):.0f} s)")
        while True:
            attempt += 1
            state = self._health(harbor)
            if state == "healthy":
                self.log(f"{harbor.name} is healthy (attempt {attempt})")
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReplicationError(
                    f"{harbor.name} at {harbor.url} was not healthy within the {self.timeout:g} s timeout "
                    f"({state}): check that Harbor runs there (docker compose ps) and that this node can reach "
                    "it, then run again")
            pause = min(delay, remaining)
            self.log(f"{harbor.name}: attempt {attempt}: {state}; next check in {pause:.1f} s")
            time.sleep(pause)
            delay = min(delay * 2, self.max_delay)

    @staticmethod
    def _health(harbor: HarborClient) -> str:
        try:
            pong, _ = harbor.call("GET", "/ping", auth=False)
            if str(pong).strip().strip('"') != "Pong":
                return f"ping answered {str(pong)[:80]!r}, not 'Pong'"
            health, _ = harbor.call("GET", "/health", auth=False)
        except _Unreachable as err:
            return str(err)
        except HarborHttpError as err:
            if err.status == 404 or err.status >= 500:  # the proxy is up, Harbor core not yet
                return str(err)
            raise
        status = health.get("status") if isinstance(health, dict) else None
        if status == "healthy":
            return "healthy"
        unhealthy = [c.get("name") for c in health.get("components", []) if c.get("status") != "healthy"] \
            if isinstance(health, dict) else []
        return f"health is {status!r}" + (f" (components: {', '.join(map(str, unhealthy))})" if unhealthy else "")


class ReplicationConfigurator(_LocalHarborTask):
    """Makes the local Harbor push to its peers; see the module documentation.

    local_url / local_credential: the Harbor to configure and a system administrator of it.
    options: what and when to replicate; default ``ReplicationOptions()``.
    tls: certificate verification; default the system trust store.
    timeout: seconds to wait, in all, for the peers and the local Harbor to become healthy; default 900.
    initial_delay / max_delay: exponential backoff between health checks, in seconds; default 1 and 30.
    refresh_credentials: rewrite the stored peer credentials even when the user name is unchanged (after a
        password rotation: Harbor never returns a stored secret, so it cannot be compared); default False.
    log: receives one progress line per wait, attempt and action; default print to stdout.
    """

    def __init__(self, local_url: str, local_credential: Credential, *,
                 options: Optional[ReplicationOptions] = None, tls: Optional[TlsOptions] = None,
                 timeout: float = 900.0, initial_delay: float = 1.0, max_delay: float = 30.0,
                 refresh_credentials: bool = False,
                 log: Callable[[str], None] = lambda line: print(line, flush=True)) -> None:
        super().__init__(local_url, local_credential, tls=tls, timeout=timeout, initial_delay=initial_delay,
                         max_delay=max_delay, log=log)
        self.options = options or ReplicationOptions()
        self.refresh_credentials = refresh_credentials

    def configure(self, peers: list[Peer]) -> dict[str, int]:
        """Waits for the peers and the local Harbor, then keeps one registry and two policies per peer.

        Returns how many objects were created, updated and left unchanged."""
        names = [peer.name for peer in peers]
        if not peers:
            raise InvalidSetting("no peer given: name at least one Harbor to replicate to")
        for name in names:
            if not _PEER_NAME.match(name):
                raise InvalidSetting(f"peer name {name!r} is invalid: use lower-case letters, digits "
                                     "and single . - _ between them")
        if len(set(names)) != len(names):
            raise InvalidSetting(f"peer names must be unique, got {names}")
        for peer in peers:
            if peer.url.rstrip("/") == self.local.url:
                raise InvalidSetting(f"peer {peer.name} has the local Harbor's URL {peer.url}: a Harbor does not "
                                     "replicate to itself")
        # Harbor checks that a registry endpoint answers when it is created: wait for the peers first.
        deadline = time.monotonic() + self.timeout
        for harbor in [HarborClient(f"peer {peer.name}", peer.url, None, context=self._context)
                       for peer in peers] + [self.local]:
            self.wait_until_healthy(harbor, deadline)
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        for peer in peers:
            registry_id = self._ensure_registry(peer, counts)
            for policy in self.desired_policies(peer, registry_id):
                self._ensure_policy(policy, counts)
        self.log(f"replication configured: {counts['created']} created, {counts['updated']} updated, "
                 f"{counts['unchanged']} unchanged")
        return counts

    # --- registry endpoints -------------------------------------------------------------------------------

    def desired_registry(self, peer: Peer) -> dict:
        """The ``Registry`` body for one peer."""
        body = {
            "name": NAME_PREFIX + peer.name,
            "description": DESCRIPTION,
            "type": "harbor",
            "url": peer.url.rstrip("/"),
            "insecure": self.tls.insecure,
            "credential": {"type": "basic", "access_key": peer.credential.username,
                           "access_secret": peer.credential.password},
        }
        ca_certificate = self.tls.ca_certificate()
        if ca_certificate:
            body["ca_certificate"] = ca_certificate
        return body

    def _ensure_registry(self, peer: Peer, counts: dict[str, int]) -> int:
        desired = self.desired_registry(peer)
        name = desired["name"]
        existing = self.local.list_by_name("/registries", name)
        if not existing:
            self.log(f"creating registry endpoint {name} -> {desired['url']}")
            _, headers = self.local.call("POST", "/registries", body=desired)
            counts["created"] += 1
            created = _created_id(headers)
            return created if created is not None else self.local.list_by_name("/registries", name)[0]["id"]
        current = existing[0]
        if current.get("type") != "harbor":
            raise ReplicationError(f"local Harbor already has a registry endpoint {name!r} of type "
                                   f"{current.get('type')!r}: delete or rename it, then run again")
        drift = self._registry_drift(current, desired)
        if drift:
            self.log(f"updating registry endpoint {name}: {', '.join(drift)}")
            update = {"name": name, "description": desired["description"], "url": desired["url"],
                      "insecure": desired["insecure"], "credential_type": "basic",
                      "access_key": peer.credential.username, "access_secret": peer.credential.password}
            if "ca_certificate" in desired:
                update["ca_certificate"] = desired["ca_certificate"]
            self.local.call("PUT", f"/registries/{current['id']}", body=update)
            counts["updated"] += 1
        else:
            self.log(f"registry endpoint {name} is up to date")
            counts["unchanged"] += 1
        return int(current["id"])

    def _registry_drift(self, current: dict, desired: dict) -> list[str]:
        drift = [key for key in ("description", "insecure") if current.get(key) != desired[key]]
        if str(current.get("url", "")).rstrip("/") != desired["url"]:
            drift.append("url")
        credential = current.get("credential") or {}
        if credential.get("access_key") != desired["credential"]["access_key"]:
            drift.append("credential user")
        elif self.refresh_credentials:
            drift.append("credential (refresh requested)")
        # Fields older Harbors do not report cannot be compared.
        if "ca_certificate" in current and (current["ca_certificate"] or None) != desired.get("ca_certificate"):
            drift.append("ca_certificate")
        return drift

    # --- policies -----------------------------------------------------------------------------------------

    def desired_policies(self, peer: Peer, registry_id: int) -> list[dict]:
        """The two ``ReplicationPolicy`` bodies (event-based, then scheduled) pushing to one peer."""
        options = self.options

        def policy(suffix: str, trigger: dict, deletion: bool) -> dict:
            return {
                "name": f"{NAME_PREFIX}{peer.name}-{suffix}",
                "description": DESCRIPTION,
                "dest_registry": {"id": registry_id},
                "dest_namespace": "",
                "trigger": trigger,
                "filters": [{"type": "name", "value": options.repositories}],
                # Harbor 2.x handlers read the deprecated ``deletion``; newer ones read ``replicate_deletion``.
                "replicate_deletion": deletion,
                "deletion": deletion,
                "override": True,
                "enabled": True,
            }

        event = policy("event", {"type": "event_based", "trigger_settings": {"cron": ""}},
                       options.event_deletion)
        scheduled = policy("scheduled", {"type": "scheduled", "trigger_settings": {"cron": options.schedule}},
                           options.scheduled_deletion)
        scheduled["single_active_replication"] = True
        return [event, scheduled]

    def _ensure_policy(self, desired: dict, counts: dict[str, int]) -> None:
        name = desired["name"]
        existing = self.local.list_by_name("/replication/policies", name)
        if not existing:
            self.log(f"creating replication policy {name} ({desired['trigger']['type']})")
            self.local.call("POST", "/replication/policies", body=desired)
            counts["created"] += 1
            return
        current = existing[0]
        drift = _policy_drift(current, desired)
        if drift:
            self.log(f"updating replication policy {name}: {', '.join(drift)}")
            self.local.call("PUT", f"/replication/policies/{current['id']}", body=desired)
            counts["updated"] += 1
        else:
            self.log(f"replication policy {name} is up to date")
            counts["unchanged"] += 1


def _policy_drift(current: dict, desired: dict) -> list[str]:
    """Names of the fields this module owns whose value on the Harbor differs from ``desired``."""
    def view(policy: dict) -> dict:
        trigger = policy.get("trigger") or {}
        kind = trigger.get("type")
        return {
            "description": policy.get("description") or "",
            "destination": ((policy.get("dest_registry") or {}).get("id"),
                            (policy.get("src_registry") or {}).get("id") or None),
            "dest_namespace": policy.get("dest_namespace") or "",
            # Harbor keeps a cron only for scheduled triggers.
            "trigger": (kind, (trigger.get("trigger_settings") or {}).get("cron") if kind == "scheduled" else None),
            "filters": sorted((f.get("type"), json.dumps(f.get("value")), f.get("decoration") or "")
                              for f in policy.get("filters") or []),
            "deletion": bool(policy.get("replicate_deletion", policy.get("deletion"))),
            "override": bool(policy.get("override")),
            "enabled": bool(policy.get("enabled")),
        }

    mine, theirs = view(desired), view(current)
    drift = [key for key in mine if mine[key] != theirs[key]]
    # Only Harbors that know single_active_replication report it.
    if "single_active_replication" in current and \
            bool(current["single_active_replication"]) != bool(desired.get("single_active_replication")):
        drift.append("single_active_replication")
    return drift


# --- pull-only replicas ----------------------------------------------------------------------------------

GUEST = 3
PUSH_ROLES = {1: "Project Admin", 2: "Developer", 4: "Maintainer"}  # Harbor's role ids that may push
_CONTENT_RESOURCES = {"repository", "artifact", "tag", "*"}
_WRITE_ACTIONS = {"push", "create", "update", "delete", "*"}


class PullOnlyGuard(_LocalHarborTask):
    """Keeps a replica Harbor pull-only for its users through project roles, not Harbor's global read-only
    switch (which would also refuse the replication pushes, goharbor#18281). Each run:

    * sets ``project_creation_restriction`` to ``adminonly`` (a user's own project would take pushes);
    * moves every project member (user or group) with a role that may push (Project Admin, Maintainer,
      Developer) to Guest, which pulls only;
    * disables every robot account allowed to push, create or delete artifacts, repositories or tags.

    The writers keep their rights: the local credential's user (the account the master replicates with) and
    the user or robot names in ``writers``. Harbor's system administrators can always push; keep their
    number small. Roles given between two runs hold until the next one: harbor-ha runs this at boot and then
    every few minutes. Idempotent: a run on a pull-only Harbor changes nothing.

    local_url / local_credential: the replica and a system administrator of it.
    writers: further user or robot names (``robot$...``) that keep pushing rights; default none.
    tls, timeout, initial_delay, max_delay, log: as for ``ReplicationConfigurator``.
    """

    def __init__(self, local_url: str, local_credential: Credential, *, writers: tuple[str, ...] = (),
                 tls: Optional[TlsOptions] = None, timeout: float = 900.0, initial_delay: float = 1.0,
                 max_delay: float = 30.0, log: Callable[[str], None] = lambda line: print(line, flush=True)) -> None:
        super().__init__(local_url, local_credential, tls=tls, timeout=timeout, initial_delay=initial_delay,
                         max_delay=max_delay, log=log)
        self.writers = {local_credential.username, *writers}

    def enforce(self) -> dict[str, int]:
        """Waits for the Harbor, then makes it pull-only; returns how many settings, members and robots changed."""
        self.wait_until_healthy(self.local)
        counts = {"settings": self._restrict_project_creation(), "members": 0, "robots": 0}
        for project in self.local.list_all("/projects"):
            for member in self.local.list_all(f"/projects/{project['project_id']}/members"):
                counts["members"] += self._demote(project, member)
        for robot in self.local.list_all("/robots"):
            counts["robots"] += self._disable_if_writer(robot)
        self.log(f"pull-only: {counts['settings']} setting, {counts['members']} project members and "
                 f"{counts['robots']} robot accounts changed")
        return counts

    def _restrict_project_creation(self) -> int:
        current, _ = self.local.call("GET", "/configurations")
        value = ((current or {}).get("project_creation_restriction") or {}).get("value")
        if value == "adminonly":
            return 0
        self.log(f"project creation: {value!r} -> 'adminonly'")
        self.local.call("PUT", "/configurations", body={"project_creation_restriction": "adminonly"})
        return 1

    def _demote(self, project: dict, member: dict) -> int:
        role = member.get("role_id")
        if role not in PUSH_ROLES or member.get("entity_name") in self.writers:
            return 0
        kind = "group" if member.get("entity_type") == "g" else "user"
        self.log(f"project {project.get('name')}: {kind} {member.get('entity_name')} {PUSH_ROLES[role]} -> Guest")
        self.local.call("PUT", f"/projects/{project['project_id']}/members/{member['id']}",
                        body={"role_id": GUEST})
        return 1

    def _disable_if_writer(self, robot: dict) -> int:
        if robot.get("disable") or robot.get("name") in self.writers:
            return 0
        writes = any(access.get("resource") in _CONTENT_RESOURCES and access.get("action") in _WRITE_ACTIONS
                     for permission in robot.get("permissions") or [] for access in permission.get("access") or [])
        if not writes:
            return 0
        self.log(f"robot account {robot.get('name')} may push: disabling it")
        self.local.call("PUT", f"/robots/{robot['id']}", body={**robot, "disable": True})
        return 1


# --- credentials from AWS Secrets Manager ---------------------------------------------------------------------

ADMIN_USERNAME = "admin"


def read_secret_credential(secret_id: str, region: Optional[str] = None) -> Credential:
    """The ``{"username": ..., "password": ...}`` JSON secret ``secret_id`` (ARN or name) as a Credential; a
    secret that is not a JSON object is the password of Harbor's ``admin``.

    Uses boto3 when importable, else the ``aws`` CLI (all a bare Amazon Linux 2023 node has). A secret given by
    ARN is read in the ARN's region (master-master reads its peer's secret across regions)."""
    if secret_id.startswith("arn:") and len(secret_id.split(":")) > 3 and secret_id.split(":")[3]:
        region = secret_id.split(":")[3]
    try:
        import boto3  # noqa: PLC0415 - optional: the node may lack it
    except ImportError:
        text = _secret_string_from_cli(secret_id, region)
    else:
        text = _secret_string_from_boto3(boto3, secret_id, region)
    if not text.lstrip().startswith("{"):
        # harbor-ha's nodes keep their generated admin password as a plain string.
        return Credential(ADMIN_USERNAME, text)
    try:
        value = json.loads(text)
        return Credential(str(value["username"]), str(value["password"]))
    except (ValueError, KeyError, TypeError):
        raise ReplicationError(f"secret {secret_id!r} is not JSON with \"username\" and \"password\" keys: "
                               "store it as {\"username\": \"...\", \"password\": \"...\"}, or as the "
                               "plain password of Harbor's admin") from None


def _secret_string_from_boto3(boto3: Any, secret_id: str, region: Optional[str]) -> str:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - comes with boto3
    try:
        answer = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=secret_id)
    except ClientError as err:
        raise ReplicationError(f"cannot read secret {secret_id!r}: {err.response['Error'].get('Code')}: "
                               f"{err.response['Error'].get('Message')}; check its ARN, --region and this "
                               "node's IAM permission secretsmanager:GetSecretValue") from None
    except BotoCoreError as err:
        raise ReplicationError(f"cannot read secret {secret_id!r}: {err}; set --region and AWS "
                               "credentials (instance profile)") from None
    if "SecretString" not in answer:
        raise ReplicationError(f"secret {secret_id!r} holds binary data; store the JSON as a string")
    return answer["SecretString"]


def _secret_string_from_cli(secret_id: str, region: Optional[str]) -> str:
    aws = shutil.which("aws")
    if aws is None:
        raise ReplicationError("reading secrets needs boto3 or the aws CLI; install one (dnf install awscli-2)")
    command = [aws, "secretsmanager", "get-secret-value", "--secret-id", secret_id,
               "--query", "SecretString", "--output", "text"]
    if region:
        command += ["--region", region]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise ReplicationError(f"cannot read secret {secret_id!r}: {result.stderr.strip()}; check its ARN, "
                               "--region and this node's IAM permission secretsmanager:GetSecretValue")
    return result.stdout.strip()


# --- command line --------------------------------------------------------------------------------------------

def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise InvalidSetting(f"{flag} {value!r} is not NAME=VALUE")
        if name in pairs:
            raise InvalidSetting(f"{flag} names {name!r} twice")
        pairs[name] = rest
    return pairs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="replication.py",
        description="Make the local Harbor push every repository to its peer Harbors: one registry endpoint "
                    "and two push policies (event-based, scheduled full sync) per peer. Idempotent.")
    parser.add_argument("--local", required=True, metavar="URL", help="URL of the Harbor to configure")
    parser.add_argument("--local-secret", required=True, metavar="ARN",
                        help="Secrets Manager secret (ARN or name) with a system admin of the local Harbor, "
                             'as {"username": ..., "password": ...}')
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=URL",
                        help="a Harbor to push to (repeatable)")
    parser.add_argument("--peer-secret", action="append", default=[], metavar="NAME=ARN",
                        help="secret with a robot or admin account of that peer (one per --peer)")
    parser.add_argument("--schedule", default=HOURLY, metavar="CRON",
                        help=f"6-field Harbor cron of the full sync (default: {HOURLY!r}, hourly)")
    parser.add_argument("--repositories", default=ALL_REPOSITORIES, metavar="PATTERN",
                        help="repository name filter (default: '**', everything)")
    parser.add_argument("--event-deletion", action=argparse.BooleanOptionalAction, default=True,
                        help="replicate deletions as they happen (default: on)")
    parser.add_argument("--scheduled-deletion", action=argparse.BooleanOptionalAction, default=False,
                        help="let the full sync delete what the local Harbor lacks (default: off)")
    parser.add_argument("--refresh-credentials", action="store_true",
                        help="rewrite the stored peer credentials (after rotating a password)")
    parser.add_argument("--timeout", type=float, default=900.0, metavar="S",
                        help="seconds to wait, in all, for the Harbors to be healthy (default: 900)")
    parser.add_argument("--ca-bundle", metavar="FILE", help="PEM CA bundle for self-signed Harbor certificates")
    parser.add_argument("--insecure", action="store_true",
                        help="do not verify TLS certificates (here and in the registry endpoints)")
    parser.add_argument("--region", help="AWS region of the secrets (default: the AWS configuration's)")
    guard = parser.add_argument_group(
        "pull-only replica", "With --pull-only, no --peer: keep the local Harbor (a replica) pull-only for its "
                             "users instead; see PullOnlyGuard.")
    guard.add_argument("--pull-only", action="store_true",
                       help="demote project members who may push to Guest, disable robots that may push, "
                            "allow only admins to create projects")
    guard.add_argument("--writer", action="append", default=[], metavar="NAME",
                       help="a user or robot that keeps pushing rights besides the --local-secret's user "
                            "(repeatable)")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    """Command-line entry: returns 0 on success, 1 on a problem the message explains, 2 on bad arguments."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse already printed the usage error
        return int(exit_.code or 0)
    try:
        if args.pull_only:
            return _guard(args)
        if args.writer:
            raise InvalidSetting("--writer applies only with --pull-only")
        urls, secrets = _pairs(args.peer, "--peer"), _pairs(args.peer_secret, "--peer-secret")
        if set(urls) != set(secrets):
            raise InvalidSetting("every --peer needs a --peer-secret with the same NAME and vice versa "
                                   f"(peers: {sorted(urls)}, secrets: {sorted(secrets)})")
        options = ReplicationOptions(schedule=args.schedule, repositories=args.repositories,
                                     event_deletion=args.event_deletion,
                                     scheduled_deletion=args.scheduled_deletion)
        configurator = ReplicationConfigurator(
            args.local, read_secret_credential(args.local_secret, args.region), options=options,
            tls=TlsOptions(ca_bundle=args.ca_bundle, insecure=args.insecure), timeout=args.timeout,
            refresh_credentials=args.refresh_credentials)
        peers = [Peer(name, url, read_secret_credential(secrets[name], args.region)) for name, url in urls.items()]
        configurator.configure(peers)
    except ReplicationError as err:
        print(f"replication.py: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("replication.py: interrupted", file=sys.stderr)
        return 130
    return 0


def _guard(args: argparse.Namespace) -> int:
    if args.peer or args.peer_secret:
        raise InvalidSetting("--pull-only configures the local Harbor alone: drop --peer and --peer-secret")
    guard = PullOnlyGuard(args.local, read_secret_credential(args.local_secret, args.region),
                          writers=tuple(args.writer), tls=TlsOptions(ca_bundle=args.ca_bundle, insecure=args.insecure),
                          timeout=args.timeout)
    guard.enforce()
    return 0


if __name__ == "__main__":
    sys.exit(main())
