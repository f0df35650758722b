"""Harbor's own installer judges what every harbor-ha Harbor node writes at boot.

For every stack, both Harbor nodes of it (two fleet servers, or master and replica, or A and B), with
``hostname`` unset and set, ``tls_certificate`` self-signed and a secret ARN, and (standalone nodes)
``node_storage`` s3 and ebs: the node's synthesized user-data, its Terraform references given values, is
written into a node sandbox (``harbor_node_sandbox``) and its boot steps run with bash up to Harbor's start:
the shared secrets (fleet), then ``configure-harbor.sh``, whose ``./prepare`` runs Harbor v2.15.2's installer
code (loader, validation, the rendering of every component). The secrets it reads are in moto's Secrets
Manager, with values of the kinds AWS makes (quotes, backslash, $, #, :, braces, %, &, |, ~). Checked in what
Harbor rendered: storage driver, bucket, region and key; database host, port, sslmode and password; Redis URL
with TLS and password; the certificate nginx serves; hostname and external URL; the secrets every fleet
node must share."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import re
import socket
import ssl
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import boto3
import pytest
import yaml

from harbor_ha.local import emulator
from harbor_ha.settings import SELF_SIGNED, HarborHaSettings
from harbor_ha.stacks import stack_class
from conftest import REFERENCE, TEST_LOCAL_ENDPOINT, FakeImds, loopback_server, reference_file, require_tool
from harbor_node_sandbox import HOST_CA_BUNDLE, HarborNodeSandbox, boot_steps, env_file, node_files, resolve_references

REGION, SECONDARY_REGION = "us-east-1", "us-west-2"
HOSTNAME = "registry.example.com"
ACCOUNT = "123456789012"
# Passwords as RDS makes them: printable ASCII but '/', '@', '"' and space.
DB_PASSWORDS = ("q'u\\o$te#1:{x}%y&z|w~v", "'$(id)`id`;<>*?!^[]=+,", "-\\\\n%s{{x}}&&''$HOME\\$",
                "%2F%40+-_.,;!'\\'&amp;#", "~:{a: b}|>-#!$'")
# Redis AUTH tokens: ElastiCache allows letters, digits and !&#$^<>- (16 to 128); the last goes beyond.
REDIS_TOKENS = ("!&#$^<>-abcDEF123456", "&anchor-like$^<>#x12", "#comment!like&1234567", ">folded$1234567-<^",
                "'quo\\te%{x}|~:#&-pw")
ADMIN_PASSWORDS = ("Adm'in\\ #1$x&y|z~{}%:", "@@DB_PASSWORD@@&\\1'", "pass word #2 'q'", "\\'%s$(x)&{{y}}",
                   "~|>!&*@:[]")
STANDALONE = ("master-slaves", "master-master")
COMPONENT_FILES = ("common/config/core/env", "common/config/core/app.conf", "common/config/jobservice/env",
                   "common/config/jobservice/config.yml", "common/config/registry/config.yml",
                   "common/config/registryctl/env", "common/config/registryctl/config.yml",
                   "common/config/nginx/nginx.conf", "common/config/portal/nginx.conf",
                   "common/config/trivy-adapter/env", "common/config/log/logrotate.conf", "docker-compose.yml")
SHARED_SECRET_KEYS = {"CORE_SECRET": "core_secret", "JOBSERVICE_SECRET": "jobservice_secret", "CSRF_KEY": "csrf_key"}

# One worker boots every case once (the booted fixture); the tests only read what the boots left.
pytestmark = [pytest.mark.timeout(1800), pytest.mark.xdist_group("harbor-installer")]


@dataclass(frozen=True)
class Case:
    stack: str
    hostname: str
    tls: str
    node_storage: str

    @property
    def id(self) -> str:
        return "-".join([self.stack, "hostname" if self.hostname else "address", self.tls, self.node_storage])


CASES = [Case(stack, hostname, tls, storage)
         for stack in ("active-active", "active-standby", *STANDALONE)
         for hostname, tls in itertools.product(("", HOSTNAME), (SELF_SIGNED, "secret"))
         for storage in (("s3", "ebs") if stack in STANDALONE else ("s3",))]


@dataclass
class NodeRun:
    case: Case
    name: str
    sandbox: HarborNodeSandbox
    results: list[subprocess.CompletedProcess]
    secrets: dict[str, str]
    """admin, db and redis: the values the node read."""
    resolved: dict[str, str]
    """Terraform expression -> the value the node got for it."""
    paths: dict[str, str]
    """Terraform address -> construct path, of every resource of the stack."""
    private_ip: str
    vip_address: str

    def config(self, path: str) -> str:
        return self.sandbox.read(f"/opt/harbor/{path}")

    def resolved_for(self, kind: str, path_suffix: str, attribute: str) -> str:
        """The value given to ``<kind>.<resource at path ending in path_suffix>.<attribute>``."""
        values = [value for expression, value in self.resolved.items()
                  if expression.startswith(kind + ".") and expression.endswith("." + attribute)
                  and self.paths[expression.rsplit(".", 1)[0]].endswith(path_suffix)]
        assert len(set(values)) == 1, (kind, path_suffix, attribute, values)
        return values[0]


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    """The project's local AWS target (moto, one request at a time: the nodes boot in parallel)."""
    root = tmp_path_factory.mktemp("emulator")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HARBOR_HA_STATE_DIR", str(root / ".harbor-ha"))
        with emulator.running(root) as running:
            yield running.endpoint


@pytest.fixture(scope="module")
def aws(moto_endpoint):
    def client(service: str, region: str = REGION):
        return boto3.client(service, region_name=region, endpoint_url=moto_endpoint, aws_access_key_id="testing",
                            aws_secret_access_key="testing")
    return client


@pytest.fixture(scope="module")
def user_certificate(tmp_path_factory, aws) -> tuple[str, str]:
    """A certificate of the user's in Secrets Manager (``tls_certificate = <ARN>``): its ARN and PEM."""
    require_tool("openssl")
    directory = tmp_path_factory.mktemp("user-certificate")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(directory / "key"),
                    "-out", str(directory / "crt"), "-days", "30", "-subj", f"/CN={HOSTNAME}",
                    "-addext", f"subjectAltName=DNS:{HOSTNAME},DNS:*.{HOSTNAME}"], check=True, capture_output=True)
    certificate = (directory / "crt").read_text()
    arn = aws("secretsmanager").create_secret(Name="harbor-ha-test/user-certificate", SecretString=json.dumps(
        {"certificate": certificate, "private_key": (directory / "key").read_text()}))["ARN"]
    return arn, certificate


@pytest.fixture(scope="module")
def vip_address(aws) -> str:
    """The VIP Elastic IP an active-standby node looks up at boot by its tag (harbor-ha:vip = the stack's
    name prefix)."""
    pair = HarborHaSettings(stacks=("active-standby",)).resource_prefix
    return aws("ec2").allocate_address(Domain="vpc", TagSpecifications=[{
        "ResourceType": "elastic-ip", "Tags": [{"Key": "harbor-ha:vip", "Value": pair}]}])["PublicIp"]


@pytest.fixture(scope="module")
def cases(request) -> list[Case]:
    """The cases the session's tests ask for (all of them, unless tests are deselected)."""
    wanted = {item.callspec.params["nodes"] for item in request.session.items
              if hasattr(item, "callspec") and "nodes" in item.callspec.params}
    return [case for case in CASES if case in wanted]


@pytest.fixture(scope="module")
def synthesized(app, synth, user_certificate, cases) -> dict[Case, dict]:
    """Every case's stack, synthesized."""
    docs = {}
    for case in cases:
        settings = HarborHaSettings(hostname=case.hostname, node_storage=case.node_storage,
                                    tls_certificate=user_certificate[0] if case.tls == "secret" else SELF_SIGNED,
                                    region=REGION, secondary_region=SECONDARY_REGION)
        stack = stack_class(case.stack)(app, f"installer-{case.id}", settings=settings,
                                        local_endpoint=TEST_LOCAL_ENDPOINT)
        docs[case] = synth(stack)
    return docs


def _paths(doc: dict) -> dict[str, str]:
    """Construct path (below the stack) of each resource, from its name: cdktf joins the path with '_' and
    appends a hash."""
    return {f"{prefix}{kind}.{name}": "/" + name.rsplit("_", 1)[0].replace("_", "/")
            for prefix, section in (("", "resource"), ("data.", "data"))
            for kind, items in doc.get(section, {}).items() for name in items}


class _Resolver:
    """Values for the Terraform references in a node's user-data, as the deployed stack would give them:
    the secrets' ARNs are those the test made in moto, every other value a stable stand-in."""

    _SIMPLE = re.compile(r"(data\.)?([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z_\[\]0-9.]+)")

    def __init__(self, doc: dict, secrets: dict[str, str], kms_key: dict) -> None:
        self.doc, self.secrets, self.kms_key = doc, secrets, kms_key
        self.resolved: dict[str, str] = {}

    def __call__(self, expression: str) -> str:
        match = self._SIMPLE.fullmatch(expression)
        if not match:
            return "${" + expression + "}"  # a function: only in commands after Harbor's start
        data, kind, name, attribute = match.groups()
        body = self.doc["data" if data else "resource"][kind][name]
        region = SECONDARY_REGION if body.get("provider") == "aws.secondary" else REGION
        digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
        values = {
            ("aws_region", "name"): region,
            ("aws_secretsmanager_secret", "arn"): self.secrets["admin" if "admin-password" in name else "redis"],
            ("aws_db_instance", "master_user_secret[0].secret_arn"): self.secrets["db"],
            ("aws_db_instance", "address"): f"harbor-registry.c{digest % 10**9}.{region}.rds.amazonaws.com",
            ("aws_db_instance", "resource_id"): f"db-{digest % 36**26:026X}",
            ("aws_elasticache_replication_group", "primary_endpoint_address"):
                f"master.harbor-cache.x{digest % 10**6}.use1.cache.amazonaws.com",
            ("aws_kms_key", "arn"): self.kms_key["Arn"],
            ("aws_kms_key", "key_id"): self.kms_key["KeyId"],
            ("aws_s3_bucket", "bucket"): f"harbor-test-bucket-{digest % 10**8}",
            ("aws_s3_bucket", "region"): region,
            ("aws_eip", "public_ip"): f"203.0.113.{digest % 250 + 1}",
            ("aws_ebs_volume", "id"): f"vol-{digest % 16**17:017x}",
        }
        value = values[(kind, attribute)]
        self.resolved[expression.removeprefix("data.") if data else expression] = value
        return value


def carry_boot_steps(doc: dict, resolver: _Resolver, aws) -> None:
    """The stack's S3 objects (the boot steps that travel in the fleet's bucket) put into the emulator's S3,
    in the bucket the node's user-data names: the node fetches them there, as it would on AWS."""
    s3 = aws("s3")
    for body in doc["resource"].get("aws_s3_object", {}).values():
        if "content_base64" not in body:
            continue
        bucket = resolve_references(body["bucket"], resolver)
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=body["key"], Body=base64.b64decode(body["content_base64"]))


def _boot(case: Case, index: int, doc: dict, instance: str, root: Path, aws, moto_endpoint: str, vip: str,
          kms_key: dict) -> NodeRun:
    """One Harbor node of ``doc`` booted in a sandbox under ``root``; its secrets take the ``index``-th
    hostile values."""
    # Each node's secrets live in its own region (master-master's B in the secondary one).
    in_secondary = doc["resource"]["aws_instance"][instance].get("provider") == "aws.secondary"
    secretsmanager = aws("secretsmanager", SECONDARY_REGION if in_secondary else REGION)
    secrets = {"admin": ADMIN_PASSWORDS[index % 5], "db": DB_PASSWORDS[index % 5], "redis": REDIS_TOKENS[index % 5]}
    arns = {"admin": secretsmanager.create_secret(Name=f"{root.name}/admin", SecretString=secrets["admin"])["ARN"],
            "db": secretsmanager.create_secret(Name=f"{root.name}/db", SecretString=json.dumps(
                {"username": "harbor", "password": secrets["db"]}))["ARN"],
            "redis": secretsmanager.create_secret(Name=f"{root.name}/redis", SecretString=secrets["redis"])["ARN"]}
    resolver = _Resolver(doc, arns, kms_key)
    user_data = resolve_references(doc["resource"]["aws_instance"][instance]["user_data"], resolver)
    carry_boot_steps(doc, resolver, aws)
    sandbox = HarborNodeSandbox(root)
    for file in node_files(user_data):
        sandbox.write(file.path, file.content, file.mode)
    assert "${" not in sandbox.read("/etc/harbor-ha/harbor.env")
    private_ip = f"10.40.{index % 200}.{10 + len(root.name) % 200}"
    imds = type("NodeImds", (FakeImds,), {"metadata": {"local-ipv4": private_ip}, "requests": []})
    environment = {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing",
                   "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true",
                   "HARBOR_PREPARE_CODE": str(REFERENCE / "prepare")}
    results = []
    with loopback_server(imds) as imds_url:
        for step in boot_steps(user_data):
            result = sandbox.run(step, {**environment, "HARBOR_HA_IMDS_ENDPOINT": imds_url})
            results.append(result)
            if result.returncode:
                break
    return NodeRun(case, instance, sandbox, results, secrets, resolver.resolved, _paths(doc), private_ip, vip)


def _harbor_instances(doc: dict) -> list[str]:
    return sorted(name for name, body in doc["resource"]["aws_instance"].items()
                  if body["tags"].get("harbor-ha:role") == "harbor")


@pytest.fixture(scope="module")
def booted(cases, synthesized, tmp_path_factory, aws, moto_endpoint, vip_address) -> dict[Case, list[NodeRun]]:
    """Both Harbor nodes of every case the session's tests ask for, booted four at a time; the two nodes of
    a fleet at the same time, as on EC2."""
    reference_file("prepare/main.py")
    root = tmp_path_factory.mktemp("nodes")
    # One KMS key per case: it names the fleet's shared-secrets secret, so each case makes its own.
    keys = {case: aws("kms").create_key()["KeyMetadata"] for case in cases}
    jobs = [(case, n, instance) for case in cases for n, instance in enumerate(_harbor_instances(synthesized[case]))]
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(_boot, case, CASES.index(case) * 2 + n, synthesized[case], instance,
                               root / f"{case.id}-{n}", aws, moto_endpoint, vip_address, keys[case])
                   for case, n, instance in jobs]
        runs = [future.result() for future in futures]
    return {case: [run for run in runs if run.case == case] for case in cases}


@pytest.fixture(params=CASES, ids=lambda case: case.id)
def nodes(request, booted) -> list[NodeRun]:
    runs = booted[request.param]
    assert len(runs) == 2
    for run in runs:
        for result in run.results:
            assert result.returncode == 0, f"{run.name}: {result.args[-1]} failed:\n{result.stdout}\n{result.stderr}"
    return runs


def test_harbors_installer_accepts_and_renders_every_component(nodes):
    for node in nodes:
        for path in COMPONENT_FILES:
            assert node.sandbox.path(f"/opt/harbor/{path}").is_file(), f"{node.name}: Harbor rendered no {path}"
        # A fleet node starts Harbor in its next step, under the schema-migration lock (test_schema_lock).
        start = [] if node.case.stack not in STANDALONE else ["restart harbor.service"]
        assert node.sandbox.systemctl_calls() == ["daemon-reload", "enable harbor.service", *start]


def test_the_storage_harbor_derives_is_the_stacks(nodes):
    for node in nodes:
        storage = yaml.safe_load(node.config("common/config/registry/config.yml"))["storage"]
        fleet = node.case.stack not in STANDALONE
        if fleet or node.case.node_storage == "s3":
            owner = "/data/storage" if fleet else node.paths[f"aws_instance.{node.name}"].rsplit("/hosts/", 1)[0] + "/storage"
            assert storage["s3"] == {
                "region": node.resolved_for("aws_s3_bucket", f"{owner}/bucket", "region"),
                "bucket": node.resolved_for("aws_s3_bucket", f"{owner}/bucket", "bucket"),
                "keyid": node.resolved_for("aws_kms_key", f"{owner}/key", "arn"),
                "encrypt": True, "secure": True, "v4auth": True, "rootdirectory": "/registry"}
            assert "filesystem" not in storage
        else:
            assert storage["filesystem"] == {"rootdirectory": "/storage"} and "s3" not in storage
            compose = yaml.safe_load(node.config("docker-compose.yml"))
            assert any(volume.startswith("/data/registry:/storage") for volume in compose["services"]["registry"]["volumes"])


def test_the_database_harbor_uses_and_its_password_byte_for_byte(nodes):
    for node in nodes:
        core = env_file(node.config("common/config/core/env"))
        if node.case.stack in STANDALONE:
            password = node.sandbox.read("/data/harbor-ha/database-password").strip()
            assert (core["POSTGRESQL_HOST"], core["POSTGRESQL_PORT"], core["POSTGRESQL_SSLMODE"]) == (
                "postgresql", "5432", "disable")
            assert env_file(node.config("common/config/db/env"))["POSTGRES_PASSWORD"] == password
        else:
            password = node.secrets["db"]
            assert core["POSTGRESQL_HOST"] == node.resolved_for("aws_db_instance", "/data/database/instance", "address")
            assert (core["POSTGRESQL_PORT"], core["POSTGRESQL_SSLMODE"], core["POSTGRESQL_USERNAME"],
                    core["POSTGRESQL_DATABASE"]) == ("5432", "require", "harbor", "registry")
        assert core["POSTGRESQL_PASSWORD"] == password
        assert core["HARBOR_ADMIN_PASSWORD"] == node.secrets["admin"]


def _redis_urls(node: NodeRun) -> list[str]:
    core = env_file(node.config("common/config/core/env"))
    jobservice = yaml.safe_load(node.config("common/config/jobservice/config.yml"))
    trivy = env_file(node.config("common/config/trivy-adapter/env"))
    return [core["_REDIS_URL_CORE"], core["_REDIS_URL_REG"], jobservice["worker_pool"]["redis_pool"]["redis_url"],
            trivy["SCANNER_REDIS_URL"]]


def test_redis_over_tls_with_the_token_byte_for_byte(nodes):
    for node in nodes:
        registry = yaml.safe_load(node.config("common/config/registry/config.yml"))["redis"]
        if node.case.stack in STANDALONE:
            assert all(urlsplit(url).scheme == "redis" and urlsplit(url).hostname == "redis" for url in _redis_urls(node))
            assert registry["addr"] == "redis:6379" and registry["enableTLS"] is False
            continue
        host = node.resolved_for("aws_elasticache_replication_group", "/data/cache/replication-group",
                                 "primary_endpoint_address")
        for url in _redis_urls(node):
            parts = urlsplit(url)
            assert (parts.scheme, parts.hostname, parts.port) == ("rediss", host, 6379), url
            assert unquote(parts.password) == node.secrets["redis"], url
        assert (registry["addr"], registry["password"], registry["enableTLS"]) == (
            f"{host}:6379", node.secrets["redis"], True)
        trusted = node.sandbox.path("/opt/harbor/common/config/shared/trust-certificates/redis_tls_ca.crt")
        assert trusted.read_bytes() == HOST_CA_BUNDLE.read_bytes()


def test_the_certificate_nginx_serves_and_the_name_harbor_answers_to(nodes, user_certificate):
    for node in nodes:
        # prepare copies the certificate into Harbor's data, which the proxy mounts at /etc/cert.
        served = node.sandbox.read("/data/secret/cert/server.crt")
        assert served == node.sandbox.read("/etc/harbor-ha/tls/server.crt")
        assert "/data/secret/cert:/etc/cert:z" in yaml.safe_load(node.config("docker-compose.yml"))["services"][
            "proxy"]["volumes"]
        if node.case.tls == "secret":
            assert served == user_certificate[1]
        nginx = node.config("common/config/nginx/nginx.conf")
        assert "ssl_certificate /etc/cert/server.crt;" in nginx and "ssl_certificate_key /etc/cert/server.key;" in nginx
        hostname = yaml.safe_load(node.config("harbor.yml"))["hostname"]
        assert hostname == _expected_hostname(node)
        assert env_file(node.config("common/config/core/env"))["EXT_ENDPOINT"] == f"https://{hostname}"


def _expected_hostname(node: NodeRun) -> str:
    if node.case.stack == "active-active":
        return node.case.hostname or node.resolved_for("aws_eip", "/static-ips/vip", "public_ip")
    if node.case.stack == "active-standby":
        return node.case.hostname or node.vip_address
    if not node.case.hostname:
        return _elastic_ip(node)
    if node.case.stack == "master-slaves":
        return f"{'push' if 'master_' in node.name else 'replica-0'}.{HOSTNAME}"
    return f"{'a' if 'harbor-a_' in node.name else 'b'}.{HOSTNAME}"


def _elastic_ip(node: NodeRun) -> str:
    path = node.paths[f"aws_instance.{node.name}"].rsplit("/hosts/", 1)[0]
    return node.resolved_for("aws_eip", f"{path}/address", "public_ip")


FLEET_CASES = [case for case in CASES if case.stack not in STANDALONE]


@pytest.mark.parametrize("nodes", FLEET_CASES, indirect=True, ids=[case.id for case in FLEET_CASES])
def test_fleet_nodes_share_harbors_secrets_in_every_file_that_holds_one(nodes, aws):
    name = next(value for key, value in env_file(nodes[0].sandbox.read("/etc/harbor-ha/harbor.env")).items()
                if key == "SHARED_SECRET_NAME")
    material = json.loads(aws("secretsmanager").get_secret_value(SecretId=name)["SecretString"])
    for node in nodes:
        seen = {key: set() for key in SHARED_SECRET_KEYS}
        for path in sorted(node.sandbox.path("/opt/harbor/common/config").rglob("*")):
            if path.is_file():
                for key, value in env_file(path.read_text(errors="replace")).items():
                    if key in seen:
                        seen[key].add((path.name, value))
        for key, field in SHARED_SECRET_KEYS.items():
            assert seen[key] and {value for _, value in seen[key]} == {material[field]}, (node.name, key, seen[key])
        assert {parent for parent, _ in seen["CORE_SECRET"]} == {"env"}
        files = {"/data/secret/keys/secretkey": material["secret_key"],
                 "/data/secret/core/private_key.pem": material["token_private_key"],
                 "/data/secret/registry/root.crt": material["token_certificate"]}
        for path, content in files.items():
            assert node.sandbox.read(path) == content, (node.name, path)


NAMED_CASES = [case for case in CASES if case.stack in STANDALONE and case.hostname]
# Which outputs name which node: (instance name part, output key, index into a list output or None).
CLIENT_NAMES = {"master-slaves": (("master_", "push_endpoint", None), ("master_", "harbor_url", None),
                                  ("replica-0_", "pull_endpoint", None), ("replica-0_", "replica_urls", 0)),
                "master-master": (("harbor-a_", "harbor_a_url", None), ("harbor-b_", "harbor_b_url", None))}


def _handshake(certificate: Path, key: Path, trusted: Path, name: str) -> None:
    """A TLS handshake with a loopback server presenting ``certificate``, verified for ``name``."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(certificate, key)
    listener = socket.create_server(("127.0.0.1", 0))
    errors: list[BaseException] = []

    def serve():
        connection, _ = listener.accept()
        try:
            with server_context.wrap_socket(connection, server_side=True):
                pass
        except (ssl.SSLError, OSError) as error:
            errors.append(error)

    thread = threading.Thread(target=serve)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(trusted))
    try:
        with socket.create_connection(listener.getsockname(), timeout=10) as raw:
            with client_context.wrap_socket(raw, server_hostname=name):
                pass
    finally:
        thread.join(timeout=10)
        listener.close()


@pytest.mark.parametrize("nodes", NAMED_CASES, indirect=True, ids=[case.id for case in NAMED_CASES])
def test_every_name_clients_are_given_is_served_by_that_node(nodes, synthesized, user_certificate, tmp_path):
    """With a hostname, each name the stack's outputs give clients: the node it leads to serves a certificate
    valid for it (Python's ssl verifies a handshake), and its Harbor's own name is one of them."""
    case = nodes[0].case
    outputs = synthesized[case]["output"]
    trusted = tmp_path / "trusted.pem"
    if case.tls == "secret":
        trusted.write_text(user_certificate[1])
    for part, output, index in CLIENT_NAMES[case.stack]:
        node = next(node for node in nodes if part in node.name)
        value = outputs[output]["value"]
        name = urlsplit(value[index] if index is not None else value).hostname
        assert name.endswith(HOSTNAME), (output, value)
        certificate, key = node.sandbox.path("/etc/harbor-ha/tls/server.crt"), node.sandbox.path("/etc/harbor-ha/tls/server.key")
        if case.tls == SELF_SIGNED:
            trusted.write_bytes(certificate.read_bytes())
        _handshake(certificate, key, trusted, name)
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(certificate, key, trusted, "elsewhere.example.org")
        if output in ("harbor_url", "replica_urls", "harbor_a_url", "harbor_b_url"):
            assert yaml.safe_load(node.config("harbor.yml"))["hostname"] == name
            assert env_file(node.config("common/config/core/env"))["EXT_ENDPOINT"] == f"https://{name}"
    if case.tls == SELF_SIGNED:
        for node in nodes:  # peers replicate to its private address (master-slaves) or Elastic IP (master-master)
            trusted.write_bytes(node.sandbox.path("/etc/harbor-ha/tls/server.crt").read_bytes())
            for address in (node.private_ip, _elastic_ip(node), "127.0.0.1"):
                _handshake(node.sandbox.path("/etc/harbor-ha/tls/server.crt"),
                           node.sandbox.path("/etc/harbor-ha/tls/server.key"), trusted, address)


