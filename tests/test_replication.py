"""harbor_ha/replication.py against a stateful in-process Harbor emulator (real HTTP on loopback) whose every
recorded request is checked against Harbor v2.15.2's own Swagger spec, and against moto for the secrets."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import jsonschema
import pytest
import yaml
from moto import mock_aws

from harbor_ha import replication
from harbor_ha.harbor_boot import boot_script
from harbor_ha.replication import (
    PAGE_SIZE, Credential, InvalidSetting, Peer, PullOnlyGuard, ReplicationConfigurator, ReplicationError,
    ReplicationOptions, TlsOptions, read_secret_credential,
)

from conftest import reference_file, require_tool

pytestmark = pytest.mark.timeout(60)

ADMIN = Credential("admin", "Harbor12345")
ROBOT = Credential("robot$harbor-ha-replication", "robot-secret")
REGION = "eu-west-1"


# --- Harbor's Swagger spec as the judge of every request ------------------------------------------------------

@pytest.fixture(scope="module")
def spec() -> dict:
    with open(reference_file("swagger.yaml"), encoding="utf-8") as stream:
        return yaml.load(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _parameters(spec: dict, path_item: dict, operation: dict) -> list[dict]:
    declared = path_item.get("parameters", []) + operation.get("parameters", [])
    return [spec["parameters"][p["$ref"].split("/")[-1]] if "$ref" in p else p for p in declared]


def _undeclared(value, schema: dict, definitions: dict, where: str) -> list[str]:
    """Properties sent that the definition does not declare (the spec rarely forbids extra properties)."""
    if "$ref" in schema:
        schema = definitions[schema["$ref"].split("/")[-1]]
    if isinstance(value, dict) and "properties" in schema:
        found = []
        for key, item in value.items():
            if key not in schema["properties"]:
                found.append(f"{where}.{key}")
            else:
                found += _undeclared(item, schema["properties"][key], definitions, f"{where}.{key}")
        return found
    if isinstance(value, list) and "items" in schema:
        return [bad for i, item in enumerate(value)
                for bad in _undeclared(item, schema["items"], definitions, f"{where}[{i}]")]
    return []


def spec_violations(spec: dict, request: dict) -> list[str]:
    """Why one recorded request does not fit the spec (empty when it fits)."""
    method, path = request["method"].lower(), request["path"]
    base = spec["basePath"]
    if not path.startswith(base + "/"):
        return [f"{path} is outside basePath {base}"]
    relative = path[len(base):]
    for template, path_item in spec["paths"].items():
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        match = re.match(pattern, relative)
        if match and method in path_item:
            break
    else:
        return [f"no operation {method.upper()} {relative} in the spec"]
    params = _parameters(spec, path_item, path_item[method])
    problems = []
    for name, value in match.groupdict().items():
        declared = next(p for p in params if p["in"] == "path" and p["name"] == name)
        if declared.get("type") == "integer" and not value.isdigit():
            problems.append(f"path parameter {name}={value!r} is not an integer")
    query_params = {p["name"]: p for p in params if p["in"] == "query"}
    for name, values in request["query"].items():
        if name not in query_params:
            problems.append(f"query parameter {name!r} is not declared for {method.upper()} {template}")
        elif query_params[name].get("type") == "integer":
            if not all(v.isdigit() and int(v) <= query_params[name].get("maximum", int(v)) for v in values):
                problems.append(f"query parameter {name}={values} is not an allowed integer")
    body_params = [p for p in params if p["in"] == "body"]
    body = request["body"]
    if body is None:
        problems += [f"missing required body {p['name']}" for p in body_params if p.get("required")]
    elif not body_params:
        problems.append(f"{method.upper()} {template} takes no body")
    else:
        if "application/json" not in request["headers"].get("Content-Type", ""):
            problems.append("body sent without Content-Type application/json")
        schema = body_params[0]["schema"]
        validator = jsonschema.Draft4Validator({**schema, "definitions": spec["definitions"]})
        problems += [f"body: {error.message} at {list(error.absolute_path)}" for error in validator.iter_errors(body)]
        problems += [f"body property {where} is not declared"
                     for where in _undeclared(body, schema, spec["definitions"], "body")]
    return problems


def assert_all_fit_spec(spec: dict, requests: list[dict]) -> None:
    bad = {f"{r['method']} {r['path']}": spec_violations(spec, r) for r in requests}
    assert not {k: v for k, v in bad.items() if v}, bad


def test_spec_judge_rejects_what_harbor_would_not_accept(spec):
    def request(method, path, body=None, query=None):
        return {"method": method, "path": path, "query": query or {}, "body": body,
                "headers": {"Content-Type": "application/json"}}

    assert spec_violations(spec, request("POST", "/api/v2.0/registry", {"name": "x"}))
    assert spec_violations(spec, request("PATCH", "/api/v2.0/registries/1", {"name": "x"}))
    assert spec_violations(spec, request("PUT", "/api/v2.0/registries/abc", {"name": "x"}))
    assert spec_violations(spec, request("GET", "/api/v2.0/registries", query={"filter": ["a"]}))
    assert spec_violations(spec, request("GET", "/api/v2.0/registries", query={"page_size": ["500"]}))
    assert spec_violations(spec, request("POST", "/api/v2.0/registries", {"name": 3}))
    assert spec_violations(spec, request("POST", "/api/v2.0/registries", {"credential": {"password": "x"}}))
    assert spec_violations(spec, request("POST", "/api/v2.0/replication/policies",
                                         {"trigger": {"type": "scheduled", "settings": {"cron": "x"}}}))
    assert spec_violations(spec, request("POST", "/api/v2.0/replication/policies"))
    assert not spec_violations(spec, request("GET", "/api/v2.0/registries", query={"q": ["name=a"]}))


# --- a stateful Harbor emulator ------------------------------------------------------------------------------

class FakeHarbor:
    """The few Harbor v2.0 endpoints replication.py uses, stored in memory; records every request."""

    def __init__(self, users: dict[str, str], unhealthy_checks: int = 0,
                 tls: ssl.SSLContext | None = None) -> None:
        self.users = users
        self.unhealthy_checks = unhealthy_checks
        self.requests: list[dict] = []
        self.registries: dict[int, dict] = {}
        self.policies: dict[int, dict] = {}
        # What a replica's pull-only guard reads and changes.
        self.configurations = {"project_creation_restriction": {"value": "everyone", "editable": True}}
        self.projects: dict[int, dict] = {}
        self.members: dict[int, dict[int, dict]] = {}
        self.robots: dict[int, dict] = {}
        self._ids = iter(range(1, 10_000))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sent(self, method: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method]

    def _handler(self):
        harbor = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _serve(self):
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                record = {"method": self.command, "path": url.path, "body": json.loads(raw) if raw else None,
                          "query": urllib.parse.parse_qs(url.query, keep_blank_values=True),
                          "headers": dict(self.headers)}
                harbor.requests.append(record)
                status, body, headers = harbor.route(record, self.headers.get("Authorization", ""))
                payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler

    def _authorized(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return self.users.get(user) == password

    def route(self, request: dict, authorization: str):
        method, path, body = request["method"], request["path"].removeprefix("/api/v2.0"), request["body"]
        if (method, path) == ("GET", "/ping"):
            return 200, "Pong", {}
        if (method, path) == ("GET", "/health"):
            healthy = self.unhealthy_checks <= 0
            self.unhealthy_checks -= 1
            state = "healthy" if healthy else "unhealthy"
            return 200, {"status": state, "components": [{"name": "core", "status": state}]}, {}
        if not self._authorized(authorization):
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]}, {}
        answer = self._route_pull_only(method, path, body, request["query"])
        if answer:
            return answer
        collection, _, item = path.rpartition("/") if path.rsplit("/", 1)[-1].isdigit() else (path, "", "")
        store = {"/registries": self.registries, "/replication/policies": self.policies}.get(collection)
        if store is None:
            return 404, {"errors": [{"code": "NOT_FOUND", "message": path}]}, {}
        if method == "GET":
            wanted = request["query"].get("q", [""])[0].removeprefix("name=")
            return 200, [self._view(v) for v in store.values() if not wanted or v["name"] == wanted], {}
        if method == "POST":
            if any(v["name"] == body["name"] for v in store.values()):
                return 409, {"errors": [{"code": "CONFLICT", "message": f"{body['name']} exists"}]}, {}
            error = self._check(collection, body)
            if error:
                return 400, {"errors": [{"code": "BAD_REQUEST", "message": error}]}, {}
            new_id = next(self._ids)
            store[new_id] = self._stored(collection, {**body, "id": new_id})
            return 201, "", {"Location": f"/api/v2.0{collection}/{new_id}"}
        if method == "PUT" and int(item) in store:
            current = store[int(item)]
            if collection == "/registries":
                current.update({k: body[k] for k in ("name", "description", "url", "insecure") if k in body})
                current["credential"] = {"type": body.get("credential_type", "basic"),
                                         "access_key": body["access_key"], "access_secret": body["access_secret"]}
            else:
                store[int(item)] = self._stored(collection, {**body, "id": int(item)})
            return 200, "", {}
        return 404, {"errors": [{"code": "NOT_FOUND", "message": path}]}, {}

    def add_project(self, name: str, members: dict[str, int], groups: dict[str, int] | None = None) -> int:
        """A project with user members (and group members) by name -> Harbor role id."""
        project_id = next(self._ids)
        self.projects[project_id] = {"project_id": project_id, "name": name, "owner_name": "admin"}
        entries = [("u", n, r) for n, r in members.items()] + [("g", n, r) for n, r in (groups or {}).items()]
        self.members[project_id] = {
            mid: {"id": mid, "project_id": project_id, "entity_type": kind, "entity_name": name, "role_id": role}
            for mid, (kind, name, role) in zip(self._ids, entries)}
        return project_id

    def add_robot(self, name: str, actions: list[tuple[str, str]], disable: bool = False, kind: str = "project") -> None:
        """A robot with ``(resource, action)`` accesses."""
        robot_id = next(self._ids)
        self.robots[robot_id] = {"id": robot_id, "name": name, "level": kind, "disable": disable, "duration": -1,
                                 "editable": True, "permissions": [{"kind": kind, "namespace": "*", "access": [
                                     {"resource": resource, "action": action} for resource, action in actions]}]}

    def role(self, project: str, name: str) -> int:
        project_id = next(i for i, p in self.projects.items() if p["name"] == project)
        return next(m["role_id"] for m in self.members[project_id].values() if m["entity_name"] == name)

    def _route_pull_only(self, method: str, path: str, body, query: dict):
        """The endpoints of PullOnlyGuard; None for any other path."""
        def page(items: list) -> list:  # Harbor pages every list
            number, size = int(query.get("page", ["1"])[0]), int(query.get("page_size", ["10"])[0])
            return items[(number - 1) * size:number * size]

        parts = path.strip("/").split("/")
        if path == "/configurations":
            if method == "PUT":
                for key, value in body.items():
                    self.configurations[key] = {"value": value, "editable": True}
                return 200, "", {}
            return 200, self.configurations, {}
        if path == "/projects" and method == "GET":
            return 200, page(list(self.projects.values())), {}
        if parts[0] == "projects" and len(parts) >= 3 and parts[2] == "members":
            members = self.members[int(parts[1])]
            if method == "GET":
                return 200, page(list(members.values())), {}
            members[int(parts[3])]["role_id"] = body["role_id"]
            return 200, "", {}
        if parts[0] == "robots":
            if method == "GET":
                return 200, page(list(self.robots.values())), {}
            self.robots[int(parts[1])] = body
            return 200, "", {}
        return None

    def _check(self, collection: str, body: dict) -> str:
        if collection == "/registries":  # Harbor refuses an endpoint it cannot reach, verified as configured
            if body.get("insecure"):
                context = ssl._create_unverified_context()  # noqa: S323 - as Harbor with insecure: true
            else:
                context = ssl.create_default_context(cadata=body.get("ca_certificate") or None)
            try:
                with urllib.request.urlopen(body["url"] + "/api/v2.0/ping", timeout=2, context=context) as answer:
                    answer.read()
            except OSError as err:
                return f"registry {body['url']} is unhealthy: {err}"
        elif body["dest_registry"]["id"] not in self.registries:
            return "destination registry not found"
        return ""

    def _stored(self, collection: str, body: dict) -> dict:
        if collection == "/registries":
            return body
        # As Harbor's handler: only the registry id is read; deletion comes back under both names.
        deletion = bool(body.get("replicate_deletion", body.get("deletion")))
        return {**body, "replicate_deletion": deletion, "deletion": deletion, "dest_namespace_replace_count": -1,
                "speed": 0, "dest_registry": {"id": body["dest_registry"]["id"]}}

    def _view(self, stored: dict) -> dict:
        """What Harbor answers: the secret masked, the destination registry expanded."""
        view = json.loads(json.dumps(stored))
        if "credential" in view:
            view["credential"]["access_secret"] = "*****"
        if "dest_registry" in view:
            view["dest_registry"] = self._view(self.registries[view["dest_registry"]["id"]])
        return view


@pytest.fixture
def harbor():
    """``harbor(users=..., unhealthy_checks=..., tls=...) -> FakeHarbor``, all closed at teardown."""
    started: list[FakeHarbor] = []

    def _start(users=None, unhealthy_checks=0, tls=None) -> FakeHarbor:
        started.append(FakeHarbor(users or {ADMIN.username: ADMIN.password}, unhealthy_checks, tls))
        return started[-1]

    yield _start
    for server in started:
        server.close()


def configurator(local: FakeHarbor, lines: list[str], **kwargs) -> ReplicationConfigurator:
    kwargs.setdefault("timeout", 5)
    return ReplicationConfigurator(local.url, ADMIN, initial_delay=0.01, max_delay=0.05, log=lines.append,
                                   **kwargs)


def policy(local: FakeHarbor, kind: str) -> dict:
    """The first peer's ``event`` or ``scheduled`` policy as stored."""
    return next(p for p in local.policies.values() if p["name"] == f"harbor-ha-replica-1-{kind}")


def peers_of(*servers: FakeHarbor) -> list[Peer]:
    return [Peer(f"replica-{i}", server.url, ROBOT) for i, server in enumerate(servers, 1)]


# --- behaviour -----------------------------------------------------------------------------------------------

def test_first_run_creates_one_registry_and_two_policies_per_peer_second_run_posts_nothing(harbor, spec):
    local, replica_1, replica_2 = harbor(), harbor(), harbor()
    peers = peers_of(replica_1, replica_2)
    lines: list[str] = []

    first = configurator(local, lines).configure(peers)

    assert first == {"created": 6, "updated": 0, "unchanged": 0}
    assert len(local.sent("POST")) == 6
    assert sorted(r["name"] for r in local.registries.values()) == ["harbor-ha-replica-1", "harbor-ha-replica-2"]
    registry = next(r for r in local.registries.values() if r["name"] == "harbor-ha-replica-1")
    assert registry["type"] == "harbor" and registry["url"] == replica_1.url and registry["insecure"] is False
    assert registry["credential"] == {"type": "basic", "access_key": ROBOT.username,
                                      "access_secret": ROBOT.password}
    policies = {p["name"]: p for p in local.policies.values()}
    assert sorted(policies) == ["harbor-ha-replica-1-event", "harbor-ha-replica-1-scheduled",
                                "harbor-ha-replica-2-event", "harbor-ha-replica-2-scheduled"]
    event, scheduled = policies["harbor-ha-replica-1-event"], policies["harbor-ha-replica-1-scheduled"]
    assert event["trigger"]["type"] == "event_based" and event["replicate_deletion"] is True
    assert scheduled["trigger"] == {"type": "scheduled", "trigger_settings": {"cron": "0 0 * * * *"}}
    assert scheduled["replicate_deletion"] is False and scheduled["single_active_replication"] is True
    for policy in (event, scheduled):
        assert policy["dest_registry"]["id"] == registry["id"] and "src_registry" not in policy
        assert policy["filters"] == [{"type": "name", "value": "**"}]
        assert policy["override"] is True and policy["enabled"] is True
    # The robot secret never reaches the progress lines.
    assert not [line for line in lines if ROBOT.password in line]
    assert any("waiting for peer replica-1" in line for line in lines)

    second = configurator(local, lines).configure(peers)

    assert second == {"created": 0, "updated": 0, "unchanged": 6}
    assert len(local.sent("POST")) == 6 and not local.sent("PUT")
    assert_all_fit_spec(spec, local.requests)
    for peer in (replica_1, replica_2):  # peers are only probed, never configured
        assert {r["path"] for r in peer.requests} <= {"/api/v2.0/ping", "/api/v2.0/health"}


def test_changed_fields_are_put_back_without_creating_anything(harbor, spec):
    local, replica = harbor(), harbor()
    peers = peers_of(replica)
    configurator(local, []).configure(peers)
    registry = next(iter(local.registries.values()))
    registry.update(url="http://127.0.0.1:9", insecure=True)
    policy(local, "event").update(enabled=False, filters=[{"type": "name", "value": "library/**"}])
    policy(local, "scheduled")["trigger"]["trigger_settings"]["cron"] = "0 0 0 * * *"
    lines: list[str] = []

    counts = configurator(local, lines, options=ReplicationOptions(schedule="0 30 * * * *")).configure(peers)

    assert counts == {"created": 0, "updated": 3, "unchanged": 0}
    assert len(local.sent("POST")) == 3
    assert registry["url"] == replica.url and registry["insecure"] is False
    assert policy(local, "event")["enabled"] is True
    assert policy(local, "event")["filters"] == [{"type": "name", "value": "**"}]
    assert policy(local, "scheduled")["trigger"]["trigger_settings"]["cron"] == "0 30 * * * *"
    assert any("updating registry endpoint harbor-ha-replica-1: insecure, url" in line for line in lines)
    assert_all_fit_spec(spec, local.requests)


def test_refresh_credentials_rewrites_the_secret_harbor_never_shows(harbor, spec):
    local, replica = harbor(), harbor()
    configurator(local, []).configure(peers_of(replica))
    rotated = [Peer("replica-1", replica.url, Credential(ROBOT.username, "rotated"))]

    assert configurator(local, []).configure(rotated)["updated"] == 0
    assert configurator(local, [], refresh_credentials=True).configure(rotated)["updated"] == 1

    assert next(iter(local.registries.values()))["credential"]["access_secret"] == "rotated"
    assert_all_fit_spec(spec, local.requests)


def test_health_answering_unhealthy_with_http_200_is_waited_out(harbor):
    local, replica = harbor(unhealthy_checks=3), harbor(unhealthy_checks=2)
    lines: list[str] = []

    configurator(local, lines).configure(peers_of(replica))

    waits = [line for line in lines if "health is 'unhealthy'" in line]
    assert len(waits) == 5, lines
    assert "components: core" in waits[0]
    # The peer is waited for before the local Harbor, whose registry check needs the peer up.
    assert lines.index("peer replica-1 is healthy (attempt 3)") < lines.index("local Harbor is healthy (attempt 4)")
    assert local.policies


def test_unreachable_harbor_gives_up_after_the_timeout_with_advice(harbor):
    local = harbor()
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    lines: list[str] = []

    with pytest.raises(ReplicationError, match=r"peer replica-1 at .* within the 0.3 s timeout .*run again"):
        configurator(local, lines, timeout=0.3).configure([Peer("replica-1", closed, ROBOT)])

    assert sum("next check in" in line for line in lines) >= 2
    assert not local.requests


def test_bad_options_are_refused_with_the_allowed_form(harbor, tmp_path):
    local = harbor()
    with pytest.raises(InvalidSetting, match=r"schedule '0 \* \* \* \*' is not a 6-field Harbor cron"):
        ReplicationOptions(schedule="0 * * * *")
    with pytest.raises(InvalidSetting, match="peer name 'Replica 1' is invalid"):
        configurator(local, []).configure([Peer("Replica 1", local.url, ROBOT)])
    with pytest.raises(InvalidSetting, match="not http"):
        configurator(local, []).configure([Peer("replica-1", "ftp://x", ROBOT)])
    with pytest.raises(InvalidSetting, match="has the local Harbor's URL"):
        configurator(local, []).configure([Peer("replica-1", local.url + "/", ROBOT)])
    with pytest.raises(InvalidSetting, match="timeout must be a positive"):
        configurator(local, [], timeout=0)
    with pytest.raises(InvalidSetting, match="cannot read the CA bundle"):
        configurator(local, [], tls=TlsOptions(ca_bundle=str(tmp_path / "missing.pem")))
    assert not local.requests


# --- pull-only replicas -------------------------------------------------------------------------------------

def guard(replica: FakeHarbor, lines: list[str], **kwargs) -> PullOnlyGuard:
    return PullOnlyGuard(replica.url, ADMIN, initial_delay=0.01, max_delay=0.05, timeout=5, log=lines.append,
                         **kwargs)


def test_pull_only_guard_leaves_users_only_pull_and_a_second_run_changes_nothing(harbor, spec):
    replica = harbor()
    # As replication leaves a project: its creator, the replicating admin, is its Project Admin.
    replica.add_project("library", {"admin": 1, "alice": 2, "bob": 4, "carol": 3, "dave": 5}, groups={"devs": 1})
    replica.add_project("team", {"admin": 1, "eve": 1})
    replica.add_robot("robot$ci", [("repository", "pull"), ("repository", "push")])
    replica.add_robot("robot$cleanup", [("artifact", "delete")], kind="system")
    replica.add_robot("robot$reader", [("repository", "pull"), ("artifact", "read")])
    replica.add_robot("robot$retired", [("repository", "push")], disable=True)
    replica.add_robot("robot$harbor-ha-sync", [("repository", "push")])
    lines: list[str] = []

    first = guard(replica, lines, writers=("robot$harbor-ha-sync",)).enforce()

    assert first == {"settings": 1, "members": 4, "robots": 2}
    assert replica.configurations["project_creation_restriction"]["value"] == "adminonly"
    roles = {(project, name): replica.role(project, name) for project, name in [
        ("library", "admin"), ("library", "alice"), ("library", "bob"), ("library", "carol"),
        ("library", "dave"), ("library", "devs"), ("team", "admin"), ("team", "eve")]}
    assert roles == {("library", "admin"): 1, ("library", "alice"): 3, ("library", "bob"): 3,
                     ("library", "carol"): 3, ("library", "dave"): 5, ("library", "devs"): 3,
                     ("team", "admin"): 1, ("team", "eve"): 3}
    disabled = {robot["name"] for robot in replica.robots.values() if robot["disable"]}
    assert disabled == {"robot$ci", "robot$cleanup", "robot$retired"}
    assert "project library: group devs Project Admin -> Guest" in lines
    assert_all_fit_spec(spec, replica.requests)

    puts = len(replica.sent("PUT"))
    second = guard(replica, lines, writers=("robot$harbor-ha-sync",)).enforce()

    assert second == {"settings": 0, "members": 0, "robots": 0}
    assert len(replica.sent("PUT")) == puts and not replica.sent("POST")


def test_pull_only_guard_reads_every_page(harbor, spec):
    replica = harbor()
    for i in range(PAGE_SIZE):
        replica.add_project(f"project-{i:03}", {"admin": 1})
    replica.add_project("last-page", {"admin": 1, "mallory": 2})

    assert guard(replica, []).enforce()["members"] == 1

    assert replica.role("last-page", "mallory") == 3
    assert any(r["path"] == "/api/v2.0/projects" and r["query"]["page"] == ["2"] for r in replica.requests)
    assert_all_fit_spec(spec, replica.requests)


# --- command line, secrets ----------------------------------------------------------------------------------

@pytest.fixture
def aws_env(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _put_secret(name: str, value: str, endpoint_url: str | None = None) -> str:
    client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=endpoint_url)
    return client.create_secret(Name=name, SecretString=value)["ARN"]


def test_main_reads_credentials_from_secrets_manager_and_configures(harbor, aws_env, capsys):
    local, replica = harbor(), harbor(users={ROBOT.username: ROBOT.password})
    with mock_aws():
        local_arn = _put_secret("harbor-ha/local-admin", json.dumps({"username": "admin", "password": "Harbor12345"}))
        robot_arn = _put_secret("harbor-ha/replica-robot", json.dumps({"username": ROBOT.username,
                                                                       "password": ROBOT.password}))
        status = replication.main(["--local", local.url, "--local-secret", local_arn,
                                   "--peer", f"replica-1={replica.url}", "--peer-secret", f"replica-1={robot_arn}",
                                   "--schedule", "0 15 * * * *", "--no-event-deletion", "--region", REGION])

    out = capsys.readouterr().out
    assert status == 0, out
    assert "replication configured: 3 created, 0 updated, 0 unchanged" in out
    assert next(iter(local.registries.values()))["credential"]["access_secret"] == ROBOT.password
    assert policy(local, "event")["replicate_deletion"] is False
    assert ROBOT.password not in out and "Harbor12345" not in out


def test_wrong_password_is_one_clear_error_without_traceback(harbor, aws_env, capsys):
    local, replica = harbor(), harbor()
    with mock_aws():
        wrong = _put_secret("admin", json.dumps({"username": "admin", "password": "wrong"}))
        robot = _put_secret("robot", json.dumps({"username": ROBOT.username, "password": ROBOT.password}))
        status = replication.main(["--local", local.url, "--local-secret", wrong, "--timeout", "5",
                                   "--peer", f"r1={replica.url}", "--peer-secret", f"r1={robot}"])

    err = capsys.readouterr().err
    assert status == 1
    assert "rejected the credential of user 'admin' (HTTP 401)" in err and "Secrets Manager secret" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not local.registries


def test_main_pull_only_reads_the_admin_secret_and_guards_the_local_harbor(harbor, aws_env, capsys):
    replica = harbor()
    replica.add_project("library", {"admin": 1, "alice": 2})
    replica.add_robot("robot$sync", [("repository", "push")])
    with mock_aws():
        admin_arn = _put_secret("harbor-ha/replica-admin", ADMIN.password)
        status = replication.main(["--pull-only", "--local", replica.url, "--local-secret", admin_arn,
                                   "--writer", "robot$sync", "--region", REGION])

    out = capsys.readouterr().out
    assert status == 0, out
    assert "pull-only: 1 setting, 1 project members and 0 robot accounts changed" in out
    assert replica.role("library", "alice") == 3 and ADMIN.password not in out


@pytest.mark.parametrize("argv, status, message", [
    (["--local", "http://h", "--local-secret", "s", "--pull-only", "--peer", "r1=http://p"], 1,
     "--pull-only configures the local Harbor alone"),
    (["--local", "http://h", "--local-secret", "s", "--writer", "robot$x", "--peer", "r1=http://p"], 1,
     "--writer applies only with --pull-only"),
    (["--local-secret", "s"], 2, "--local"),
    (["--local", "http://h", "--local-secret", "s", "--peer", "r1=http://p"], 1,
     "every --peer needs a --peer-secret"),
    (["--local", "http://h", "--local-secret", "s", "--peer", "r1"], 1, "'r1' is not NAME=VALUE"),
    (["--local", "http://h", "--local-secret", "s", "--peer", "r1=http://p", "--peer-secret", "r1=a",
      "--schedule", "@hourly"], 1, "not a 6-field Harbor cron"),
])
def test_bad_arguments_exit_non_zero_with_a_message(argv, status, message, capsys):
    assert replication.main(argv) == status
    assert message in capsys.readouterr().err


def test_secret_problems_are_explained(aws_env):
    with mock_aws():
        _put_secret("plain", "GeneratedAdminPassword1")
        assert read_secret_credential("plain", REGION) == Credential("admin", "GeneratedAdminPassword1")
        # By ARN, the secret is read in the ARN's region whatever region is given.
        arn = _put_secret("by-arn", "AnotherPassword2")
        assert read_secret_credential(arn, "eu-west-3") == Credential("admin", "AnotherPassword2")
        _put_secret("broken", '{"user": "admin"}')
        with pytest.raises(ReplicationError, match=r"not JSON with \"username\" and \"password\""):
            read_secret_credential("broken", REGION)
        with pytest.raises(ReplicationError, match="ResourceNotFoundException.*secretsmanager:GetSecretValue"):
            read_secret_credential("missing", REGION)


@pytest.fixture(scope="module")
def moto_server(moto_endpoint):
    return moto_endpoint


def test_standalone_script_without_site_packages_uses_the_aws_cli(harbor, moto_server, aws_env, tmp_path,
                                                                   monkeypatch):
    """As on a bare Amazon Linux node: ``python3 -S replication.py`` (no boto3) with the aws CLI on PATH."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # venv's CLI
    require_tool("aws")
    local, replica = harbor(), harbor()
    local_arn = _put_secret("cli/local", json.dumps({"username": "admin", "password": "Harbor12345"}), moto_server)
    robot_arn = _put_secret("cli/robot", json.dumps({"username": ROBOT.username, "password": ROBOT.password}),
                            moto_server)
    script = tmp_path / "replication.py"  # run from a copy, as cloud-init writes it to /opt/harbor-ha
    script.write_text(Path(replication.__file__).read_text())
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_server}

    result = subprocess.run([sys.executable, "-S", str(script), "--local", local.url, "--local-secret", local_arn,
                             "--peer", f"replica-1={replica.url}", "--peer-secret", f"replica-1={robot_arn}",
                             "--region", REGION, "--timeout", "10"],
                            capture_output=True, text=True, env=env, timeout=50, check=False)

    assert result.returncode == 0, result.stderr
    assert "replication configured: 3 created" in result.stdout
    assert next(iter(local.registries.values()))["credential"]["access_secret"] == ROBOT.password


# --- TLS ----------------------------------------------------------------------------------------------------

def _self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, as a Harbor installed without a public CA has."""
    openssl = require_tool("openssl")
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def _serving(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    return _self_signed(tmp_path_factory.mktemp("tls"), "harbor")


def test_self_signed_harbor_needs_its_ca_bundle(harbor, certificate, spec):
    cert, key = certificate
    local, replica = harbor(tls=_serving(cert, key)), harbor()

    with pytest.raises(ReplicationError, match="certificate not trusted .*--ca-bundle"):
        configurator(local, []).configure(peers_of(replica))
    configurator(local, [], tls=TlsOptions(ca_bundle=str(cert))).configure(peers_of(replica))

    registry = next(iter(local.registries.values()))
    assert registry["ca_certificate"] == cert.read_text() and registry["insecure"] is False
    assert_all_fit_spec(spec, local.requests)


def _gather(tmp_path: Path, moto_server: str, bucket: str, peers: list[str], **env) -> subprocess.CompletedProcess:
    """gather-peer-certificates.sh as the source node runs it, with the real aws CLI against moto."""
    script = tmp_path / "gather-peer-certificates.sh"
    script.write_text(boot_script("gather-peer-certificates.sh").content)
    environment = {**os.environ, "AWS_ENDPOINT_URL": moto_server, "HARBOR_HA_STATE_DIR": str(tmp_path / "etc"),
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.run(["bash", str(script), REGION, bucket, str(tmp_path / "bundle.pem"), *peers],
                          env=environment, capture_output=True, text=True, timeout=60)


def test_pinned_certificates_gathered_from_the_carrier_verify_every_harbor(harbor, moto_server, aws_env, tmp_path,
                                                                          spec):
    """The source's own certificate plus what each peer published: with that bundle, and nothing else, the
    configurator verifies both self-signed Harbors and hands the bundle to the registry endpoint."""
    require_tool("aws")
    (tmp_path / "etc" / "tls").mkdir(parents=True)
    own_cert, own_key = _self_signed(tmp_path / "etc" / "tls", "server")
    peer_cert, peer_key = _self_signed(tmp_path, "replica-1")
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_server)
    s3.create_bucket(Bucket="carrier-pinned", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="carrier-pinned", Key="certificates/replica-1.pem", Body=peer_cert.read_bytes())

    result = _gather(tmp_path, moto_server, "carrier-pinned", ["replica-1"])

    assert result.returncode == 0, result.stderr
    bundle = tmp_path / "bundle.pem"
    assert bundle.read_text() == own_cert.read_text() + peer_cert.read_text()
    local, replica = harbor(tls=_serving(own_cert, own_key)), harbor(tls=_serving(peer_cert, peer_key))
    configurator(local, [], tls=TlsOptions(ca_bundle=str(bundle))).configure(peers_of(replica))
    registry = next(iter(local.registries.values()))
    assert registry["ca_certificate"] == bundle.read_text() and registry["insecure"] is False
    assert_all_fit_spec(spec, local.requests)
    # Without the peer's certificate the peer is not trusted.
    with pytest.raises(ReplicationError, match="peer replica-1 .*certificate not trusted"):
        configurator(harbor(tls=_serving(own_cert, own_key)), [],
                     tls=TlsOptions(ca_bundle=str(own_cert))).configure(peers_of(replica))


def test_a_peer_that_never_publishes_its_certificate_stops_the_gathering_with_advice(moto_server, aws_env, tmp_path):
    require_tool("aws")
    (tmp_path / "etc" / "tls").mkdir(parents=True)
    _self_signed(tmp_path / "etc" / "tls", "server")
    boto3.client("s3", region_name=REGION, endpoint_url=moto_server).create_bucket(
        Bucket="carrier-empty", CreateBucketConfiguration={"LocationConstraint": REGION})

    result = _gather(tmp_path, moto_server, "carrier-empty", ["replica-9"], HARBOR_HA_CERT_ATTEMPTS="2", HARBOR_HA_CERT_WAIT="0")

    assert result.returncode == 1
    assert "waiting for peer replica-9's certificate (attempt 1 of 2)" in result.stdout
    assert "no certificate from peer replica-9" in result.stderr and "cloud-init status" in result.stderr
    assert not (tmp_path / "bundle.pem").exists()


def test_module_parses_as_python_3_9_the_python_of_amazon_linux_2023():
    import ast

    ast.parse(Path(replication.__file__).read_text(), feature_version=(3, 9))
