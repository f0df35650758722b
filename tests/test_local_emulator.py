"""The managed local emulator (start, reuse, stop, reset, stale state), and the guarantee that a local
deployment reaches nothing but loopback."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

import boto3
import pytest

from harbor_ha.local import emulator
from harbor_ha.local.server import replaying_retries, serialized
from harbor_ha.provider import LOCAL_SERVICES
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks import STACK_CLASSES, stack_class
from harbor_ha.target import LOCAL_ACCESS_KEY

AVAILABLE = [name for name, target in STACK_CLASSES.items()
             if importlib.util.find_spec(target.split(":")[0]) is not None]

# The AWS service (provider endpoint key) of each resource / data source type prefix; None: no API call.
SERVICE_OF_PREFIX = {
    "aws_instance": "ec2", "aws_eip": "ec2", "aws_vpc": "ec2", "aws_subnet": "ec2", "aws_route": "ec2",
    "aws_internet_gateway": "ec2", "aws_nat_gateway": "ec2", "aws_network_interface": "ec2",
    "aws_security_group": "ec2", "aws_default_security_group": "ec2", "aws_ebs": "ec2",
    "aws_volume_attachment": "ec2", "aws_ami": "ec2",
    "aws_availability_zones": "ec2", "aws_key_pair": "ec2", "aws_launch_template": "ec2",
    "aws_s3": "s3", "aws_iam_policy_document": None, "aws_iam": "iam", "aws_kms": "kms", "aws_db": "rds",
    "aws_rds": "rds", "aws_elasticache": "elasticache", "aws_secretsmanager": "secretsmanager", "aws_ssm": "ssm",
    "aws_route53": "route53", "aws_caller_identity": "sts", "aws_region": None, "aws_partition": None,
    "aws_flow_log": "ec2", "aws_cloudwatch_log": "cloudwatchlogs",
}


def service_of(kind: str) -> str | None:
    prefix = max((p for p in SERVICE_OF_PREFIX if kind == p or kind.startswith(p + "_")), key=len, default="")
    assert prefix, f"{kind}: which AWS service does it call? add it to SERVICE_OF_PREFIX"
    return SERVICE_OF_PREFIX[prefix]


@pytest.mark.parametrize("stack", AVAILABLE)
def test_local_target_reaches_only_loopback(stack, app, synth, stack_id):
    settings = HarborHaSettings(target="local", stacks=(stack,))
    doc = synth(stack_class(stack)(app, stack_id, settings=settings, local_endpoint="http://127.0.0.1:4566"))
    providers = doc["provider"]["aws"]
    used = {service_of(kind) for section in ("resource", "data") for kind in doc.get(section, {})} - {None}
    for provider in providers:
        endpoints = provider["endpoints"][0]
        assert used <= set(endpoints) <= set(LOCAL_SERVICES), (used, endpoints)
        for service, url in endpoints.items():
            assert urlparse(url).hostname == "127.0.0.1", (service, url)
        assert provider["access_key"] == LOCAL_ACCESS_KEY


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("HARBOR_HA_STATE_DIR", raising=False)
    monkeypatch.delenv("HARBOR_HA_LOCAL_ENDPOINT", raising=False)
    yield tmp_path
    emulator.stop(tmp_path)


def _state(project, resources: list) -> None:
    path = project / ".harbor-ha" / "state" / "local" / "active-active.tfstate"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 4, "resources": resources}))


def test_start_reuse_reset_stop(project):
    first, started = emulator.start(project)
    assert started and first.endpoint.startswith("http://127.0.0.1:")
    assert emulator.endpoint(project, start_if_needed=False) == first.endpoint  # what the provider of target local reads
    again, started = emulator.start(project)
    assert again == first and not started
    assert emulator.status(project) == first

    s3 = boto3.client("s3", endpoint_url=first.endpoint, region_name="us-east-1",
                      aws_access_key_id=LOCAL_ACCESS_KEY, aws_secret_access_key=LOCAL_ACCESS_KEY)
    s3.create_bucket(Bucket="left-over")
    _state(project, [{"type": "aws_s3_bucket"}])
    removed = emulator.reset(project)
    assert [p.name for p in removed] == ["active-active.tfstate"]
    assert s3.list_buckets()["Buckets"] == []

    assert emulator.stop(project)
    assert emulator.status(project) is None
    assert not emulator.stop(project)


def test_the_endpoint_is_the_configured_one_else_the_projects_own(project, monkeypatch):
    """One answer for the provider, ``harbor-ha`` and ``cdktf synth``: an emulator named in the environment is
    used as it is (none is started), else the project's, started only when asked."""
    with pytest.raises(emulator.LocalTargetNotRunning, match="harbor-ha local start"):
        emulator.endpoint(project, start_if_needed=False)
    assert emulator.status(project) is None, "asking without start_if_needed starts nothing"
    heard = []
    started = emulator.endpoint(project, report=heard.append)
    assert heard == [f"local AWS emulator started at {started} (pid {emulator.status(project).pid})"]
    assert emulator.endpoint(project, report=heard.append) == started and heard[-1].startswith("local AWS emulator "
                                                                                               "running at")
    monkeypatch.setenv(emulator.ENDPOINT_ENV, "http://127.0.0.1:9")
    assert emulator.endpoint(project, report=heard.append) == "http://127.0.0.1:9" and len(heard) == 2


def test_reset_deletes_the_state_the_stacks_write_in_the_project_wherever_the_emulator_lives(
        project, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HARBOR_HA_STATE_DIR", str(tmp_path_factory.mktemp("emulator-files")))
    _state(project, [{"type": "aws_instance"}])
    assert [p.name for p in emulator.reset(project)] == ["active-active.tfstate"]


def test_died_with_state_left_offers_reset(project):
    running, _ = emulator.start(project)
    _state(project, [{"type": "aws_instance"}])
    emulator.stop(project)
    with pytest.raises(emulator.EmulatorError, match="harbor-ha local reset"):
        emulator.start(project)
    emulator.reset(project)
    restarted, started = emulator.start(project)
    assert started and restarted.pid != running.pid


def test_empty_state_does_not_block_a_start(project):
    _state(project, [])
    assert emulator.start(project)[1]


def test_the_emulator_handles_one_request_at_a_time():
    """Moto is not safe for concurrent requests; the server hands it one at a time, the whole body included."""
    active, most = [0], [0]
    guard = threading.Lock()

    def slow_app(environ, start_response):
        with guard:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.02)
        with guard:
            active[0] -= 1
        start_response("200 OK", [])
        yield environ["PATH_INFO"].encode()

    app = serialized(slow_app)
    bodies: list[list[bytes]] = []
    threads = [threading.Thread(target=lambda i=i: bodies.append(app({"PATH_INFO": f"/{i}"}, lambda *a: None)))
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
    assert sorted(bodies) == sorted([[f"/{i}".encode()] for i in range(8)])


def _counting_app(status: str = "200 OK"):
    calls: list[str] = []

    def app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        start_response(status, [("X-Call", str(len(calls)))])
        return [f"call {len(calls)}".encode()]

    return app, calls


def _call(app, path: str, invocation: str | None, attempt: int = 1):
    environ = {"PATH_INFO": path, "HTTP_AMZ_SDK_REQUEST": f"attempt={attempt}; max=3"}
    if invocation:
        environ["HTTP_AMZ_SDK_INVOCATION_ID"] = invocation
    given = []
    body = app(environ, lambda status, headers, *exc: given.extend([status, headers]))
    return given[0], dict(given[1]), b"".join(body)


def test_an_sdk_retry_gets_its_first_attempts_answer():
    inner, calls = _counting_app()
    app = replaying_retries(inner)
    first = _call(app, "/authorize", "call-1")
    assert _call(app, "/authorize", "call-1", attempt=2) == first
    assert calls == ["/authorize"]
    # Another call, a first attempt reusing an id, and a request without SDK headers all reach moto.
    assert _call(app, "/authorize", "call-2", attempt=2)[2] == b"call 2"
    assert _call(app, "/authorize", "call-1", attempt=1)[2] == b"call 3"
    assert _call(app, "/authorize", None, attempt=2)[2] == b"call 4"


def test_a_retry_after_a_server_error_is_carried_out_again():
    inner, calls = _counting_app("500 Internal Server Error")
    app = replaying_retries(inner)
    _call(app, "/unimplemented", "call-1")
    _call(app, "/unimplemented", "call-1", attempt=2)
    assert len(calls) == 2


def test_the_emulator_answers_a_retried_authorization_as_it_answered_the_first(project):
    """The failure this prevents: the SDK fails to read the answer to an authorization moto carried out,
    retries, and moto answers InvalidPermission.Duplicate for a rule the caller never saw created."""
    running, _ = emulator.start(project)
    ec2 = boto3.client("ec2", endpoint_url=running.endpoint, region_name="us-east-1",
                       aws_access_key_id=LOCAL_ACCESS_KEY, aws_secret_access_key=LOCAL_ACCESS_KEY)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    sent = []
    ec2.meta.events.register("before-send.ec2.AuthorizeSecurityGroupIngress",
                             lambda request, **_: sent.append(request))
    rule = dict(GroupId=group, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                                               "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    created = ec2.authorize_security_group_ingress(**rule)["SecurityGroupRules"][0]["SecurityGroupRuleId"]

    def resend(headers: dict) -> bytes:
        request = urllib.request.Request(sent[0].url, data=sent[0].body.encode(), headers=headers, method="POST")
        with urllib.request.urlopen(request) as response:
            return response.read()

    retry = {**dict(sent[0].headers), "amz-sdk-request": "attempt=2; max=3"}
    assert created.encode() in resend(retry)
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
    assert [r["SecurityGroupRuleId"] for r in rules["SecurityGroupRules"] if not r["IsEgress"]] == [created]
    # A new call with the same rule is still refused: only retries are answered from memory.
    with pytest.raises(urllib.error.HTTPError, match="400"):
        resend({**retry, "amz-sdk-invocation-id": "another-call"})
