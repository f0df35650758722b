"""The four solution stacks as synthesized: what each topology must hold, judged by terraform validate,
keepalived, cloud-init and the JSON itself; and `cdktf synth` through the real CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from syrupy.extensions.json import JSONSnapshotExtension

from harbor_ha.keepalived import CONFIG_PATH
from harbor_ha.settings import STACK_NAMES, HarborHaSettings
from harbor_ha.stacks import stack_class
from harbor_ha.terraform_config import terraform_env

from conftest import IN_CI, PROJECT, TEST_LOCAL_ENDPOINT, CdktfTesting, image_buckets, require_tool, resources
from harbor_vm_helpers import PLAINTEXT_SECRETS, policy_statements, without_references, written_files
from keepalived_helpers import check_installed_config


@pytest.fixture(scope="module")
def stacks(app):
    """Every stack with the default settings, once per session App: (stack, parsed JSON)."""
    settings = HarborHaSettings()
    built = {}
    for name in STACK_NAMES:
        stack = stack_class(name)(app, f"solution-{name}", settings=settings, local_endpoint=TEST_LOCAL_ENDPOINT)
        built[name] = (stack, json.loads(CdktfTesting.synth(stack)))
    return built


def instances(doc: dict) -> list[dict]:
    return list(resources(doc, "aws_instance").values())


def zone_of(doc: dict, instance: dict) -> str:
    subnet = re.fullmatch(r"\$\{aws_subnet\.(.+)\.id\}", instance["subnet_id"]).group(1)
    return resources(doc, "aws_subnet")[subnet]["availability_zone"]


def argv_commands(instance: dict) -> list[list[str]]:
    """The instance's first-boot commands given as argv (cloud-init runcmd lists)."""
    return [c for c in yaml.safe_load(instance["user_data"])["runcmd"] if isinstance(c, list)]


def role_of(instance: dict) -> str:
    return instance["tags"].get("harbor-ha:role", "lb")


@pytest.mark.parametrize("name", STACK_NAMES)
def test_stack_snapshot(stacks, name, snapshot):
    """Each stack's Terraform JSON in a file of its own (``__snapshots__/test_stacks/<test>[<stack>].json``), so
    a change to one stack is reviewed as a diff of that stack alone."""
    assert stacks[name][1] == snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("name", STACK_NAMES)
def test_every_instance_requires_imdsv2_and_encrypts_its_root_volume(stacks, name):
    doc = stacks[name][1]
    for instance in instances(doc):
        assert instance["metadata_options"]["http_tokens"] == "required", instance["tags"]
        assert instance["root_block_device"]["encrypted"] is True, instance["tags"]


@pytest.mark.parametrize("name", STACK_NAMES)
def test_no_plaintext_secret_in_synth_output(stacks, name):
    text = json.dumps(stacks[name][1])
    for secret in PLAINTEXT_SECRETS:
        assert secret not in text
    for kind, body in (("aws_elasticache_replication_group", "auth_token"),
                       ("aws_secretsmanager_secret_version", "secret_string")):
        for resource in resources(stacks[name][1], kind).values():
            if body in resource:
                assert resource[body].startswith("${"), f"{kind}.{body} must be a reference"


def test_active_active_holds_the_whole_topology(stacks):
    doc = stacks["active-active"][1]
    lbs = [i for i in instances(doc) if role_of(i) == "lb"]
    harbors = [i for i in instances(doc) if role_of(i) == "harbor"]
    assert len(lbs) == 2 and len({zone_of(doc, i) for i in lbs}) == 2, "two LB VMs in two AZs"
    assert len(harbors) == HarborHaSettings().harbor_count
    assert len({zone_of(doc, i) for i in harbors}) >= 2, "Harbor servers over at least two AZs"
    vips = [e for e in resources(doc, "aws_eip").values() if "harbor-ha:vip" in e.get("tags", {})]
    assert len(vips) == 1 and vips[0]["instance"].startswith("${aws_instance.lb_director-0")
    (db,) = resources(doc, "aws_db_instance").values()
    assert (db["engine"], db["multi_az"], db["storage_encrypted"]) == ("postgres", True, True)
    assert db["manage_master_user_password"] is True and "password" not in db
    (redis,) = resources(doc, "aws_elasticache_replication_group").values()
    assert redis["automatic_failover_enabled"] is True and redis["multi_az_enabled"] is True
    # at_rest_encryption_enabled is a string in provider 5.100.
    assert redis["transit_encryption_enabled"] is True and str(redis["at_rest_encryption_enabled"]) == "true"
    (bucket,) = image_buckets(doc)
    of_bucket = {kind: [r for r in resources(doc, kind).values() if r["bucket"] == f"${{aws_s3_bucket.{bucket}.id}}"]
                 for kind in ("aws_s3_bucket_versioning", "aws_s3_bucket_server_side_encryption_configuration",
                              "aws_s3_bucket_public_access_block")}
    (versioning,) = of_bucket["aws_s3_bucket_versioning"]
    assert versioning["versioning_configuration"]["status"] == "Enabled"
    (sse,) = of_bucket["aws_s3_bucket_server_side_encryption_configuration"]
    assert sse["rule"][0]["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
    (block,) = of_bucket["aws_s3_bucket_public_access_block"]
    assert all(block[k] for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                  "restrict_public_buckets"))
    assert set(doc["output"]) >= {"harbor_url", "vip_address", "harbor_private_ips", "db_endpoint", "redis_endpoint",
                                  "bucket", "db_master_secret_arn", "redis_auth_secret_arn", "harbor_secrets_arn"}


def test_active_standby_is_two_harbors_in_two_azs_holding_one_vip(stacks):
    doc = stacks["active-standby"][1]
    nodes = instances(doc)
    assert [role_of(i) for i in nodes] == ["harbor", "harbor"], "no LB VMs"
    assert len({zone_of(doc, i) for i in nodes}) == 2
    assert all(i["associate_public_ip_address"] is True for i in nodes)
    assert len([e for e in resources(doc, "aws_eip").values() if "harbor-ha:vip" in e.get("tags", {})]) == 1
    for kind in ("aws_db_instance", "aws_elasticache_replication_group"):
        assert len(resources(doc, kind)) == 1, f"shared data tier: one {kind}"
    assert len(image_buckets(doc)) == 1, "shared data tier: one image bucket"
    vrrp = [r for r in resources(doc, "aws_vpc_security_group_ingress_rule").values() if r["ip_protocol"] == "112"]
    assert len(vrrp) == 1 and vrrp[0]["referenced_security_group_id"] == vrrp[0]["security_group_id"]


def test_active_standby_keepalived_configs_pass_and_differ_only_in_identity(stacks, tmp_path):
    doc = stacks["active-standby"][1]
    configs = []
    for index, node in enumerate(instances(doc)):
        files = written_files(node["user_data"])
        result = check_installed_config(files, tmp_path / str(index))
        assert result.returncode == 0, result.stderr
        configs.append(files[CONFIG_PATH].splitlines())
    changed = [(a, b) for a, b in zip(*configs) if a != b]
    assert len(configs[0]) == len(configs[1])
    for first, second in changed:
        key = first.split()[0]
        assert key in {"router_id", "priority", "unicast_src_ip"} or re.fullmatch(r"[\d.]+", key), (first, second)
    assert "vrrp_script harbor_health" in "\n".join(configs[0])


@pytest.mark.parametrize("name", STACK_NAMES)
def test_every_user_data_passes_cloud_init_schema(stacks, name, tmp_path):
    cloud_init = require_tool("cloud-init")
    for index, instance in enumerate(instances(stacks[name][1])):
        path = tmp_path / f"user-data-{index}.yaml"
        path.write_text(without_references(instance["user_data"]))
        result = subprocess.run([cloud_init, "schema", "--config-file", str(path)], capture_output=True, text=True)
        assert result.returncode == 0 and "Valid cloud-config" in result.stdout, result.stdout + result.stderr


def test_master_slaves_replicates_from_the_master_and_spreads_pulls_over_healthy_replicas(stacks):
    doc = stacks["master-slaves"][1]
    assert len(instances(doc)) == 1 + HarborHaSettings().replica_count
    master = next(body for key, body in resources(doc, "aws_instance").items() if key.startswith("master_"))
    fetch, replicate = [c for c in argv_commands(master) if "/opt/harbor-ha/replication.py" in c]
    assert fetch[:3] == ["aws", "s3", "cp"], "the configurator comes from its carrier bucket"
    assert replicate[:2] == ["python3", "/opt/harbor-ha/replication.py"]
    assert "--peer" in replicate and "--peer-secret" in replicate
    checks = resources(doc, "aws_route53_health_check").values()
    assert all(c["type"] == "HTTPS_STR_MATCH" and c["resource_path"] == "/api/v2.0/health"
               and "healthy" in c["search_string"] for c in checks)
    pulls = [r for r in resources(doc, "aws_route53_record").values() if r["name"].startswith("pull.")]
    assert pulls and all(r["multivalue_answer_routing_policy"] and r["health_check_id"] for r in pulls)
    assert {"push_endpoint", "pull_endpoint"} <= set(doc["output"])


def test_master_slaves_replicas_run_the_pull_only_guard_at_boot_and_from_a_systemd_timer(stacks, tmp_path):
    doc = stacks["master-slaves"][1]
    replicas = [body for key, body in resources(doc, "aws_instance").items() if key.startswith("replica-")]
    assert len(replicas) == HarborHaSettings().replica_count
    analyze = require_tool("systemd-analyze")
    for replica in replicas:
        commands = argv_commands(replica)
        assert ["systemctl", "start", "harbor-ha-pull-only.service"] in commands
        assert ["systemctl", "enable", "--now", "harbor-ha-pull-only.timer"] in commands
        fetch = next(c for c in commands if c[:3] == ["aws", "s3", "cp"])
        assert commands.index(fetch) < commands.index(["systemctl", "start", "harbor-ha-pull-only.service"])
        units = {path: text for path, text in written_files(replica["user_data"]).items()
                 if path.startswith("/etc/systemd/system/harbor-ha-pull-only.")}
        exec_start = next(line for line in units["/etc/systemd/system/harbor-ha-pull-only.service"].splitlines()
                          if line.startswith("ExecStart="))
        assert "/opt/harbor-ha/replication.py --pull-only --local https://127.0.0.1 --local-secret" in exec_start
        assert "--peer" not in exec_start and "--insecure" not in exec_start
        assert exec_start.endswith("--ca-bundle /etc/harbor-ha/tls/server.crt"), "the node trusts its own certificate"
        folder = tmp_path / replica["tags"]["Name"]
        folder.mkdir()
        for path, text in units.items():
            (folder / Path(path).name).write_text(without_references(text))
        result = subprocess.run([analyze, "verify", "--man=no", *sorted(map(str, folder.iterdir()))],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    # The master has no guard: it takes the pushes.
    master = next(body for key, body in resources(doc, "aws_instance").items() if key.startswith("master_"))
    assert "harbor-ha-pull-only" not in master["user_data"]
    # Master and replicas only read the configurator's bucket.
    grants = [g for g in resources(doc, "aws_iam_role_policy").values() if g["name"] == "carrier-read"]
    assert len({g["role"] for g in grants}) == 1 + len(replicas)
    for policy in grants:
        statements = policy_statements(doc, policy)
        assert sorted(a for s in statements for a in s["actions"]) == ["kms:Decrypt", "s3:GetObject"]


def test_master_master_holds_two_providers_in_two_regions_replicating_both_ways(stacks):
    doc = stacks["master-master"][1]
    settings = HarborHaSettings()
    providers = doc["provider"]["aws"]
    assert sorted(p["region"] for p in providers) == sorted([settings.region, settings.secondary_region])
    by_provider = [i.get("provider") for i in instances(doc)]
    assert sorted(by_provider, key=str) == sorted([None, "aws.secondary"], key=str), "one Harbor per region"
    for instance in instances(doc):
        assert any("/opt/harbor-ha/replication.py" in c for c in argv_commands(instance))
    assert {"harbor_a_url", "harbor_b_url"} <= set(doc["output"])


@pytest.mark.parametrize("name", ["master-slaves", "master-master"])
def test_replication_verifies_every_harbor_with_the_certificates_the_peers_publish(stacks, name, tmp_path):
    doc = stacks[name][1]
    published, gathered = set(), set()
    for instance in instances(doc):
        commands = argv_commands(instance)
        for command in commands:
            assert "--insecure" not in command, instance["tags"]["Name"]
            if command[:3] == ["aws", "s3", "cp"] and command[-2] == "/etc/harbor-ha/tls/server.crt":
                assert command[3:5] == ["--only-show-errors", "--region"]
                published.add(re.search(r"certificates/([a-z0-9-]+)\.pem", command[-1]).group(1))
        sources = [c for c in commands if c[:2] == ["python3", "/opt/harbor-ha/replication.py"]]
        for configure in sources:
            assert configure[configure.index("--ca-bundle") + 1] == "/etc/harbor-ha/replication-ca.pem"
            peers = {re.search(r"([a-z0-9-]+)=https://", configure[i + 1]).group(1)
                     for i, arg in enumerate(configure) if arg == "--peer"}
            (gather,) = [c for c in commands if "gather-peer-certificates.sh" in c]
            assert commands.index(gather) < commands.index(configure)
            assert gather[4] == "/etc/harbor-ha/replication-ca.pem" and set(gather[5:]) == peers
            gathered |= peers
            script = tmp_path / f"{instance['tags']['Name']}-gather.sh"
            script.write_text(written_files(instance["user_data"])[
                "/usr/local/libexec/harbor-ha/gather-peer-certificates.sh"])
            checked = subprocess.run([require_tool("shellcheck"), str(script)], capture_output=True, text=True)
            assert checked.returncode == 0, checked.stdout
    assert published == gathered and gathered, "every peer a source waits for publishes its certificate"
    # A peer may write its own certificate's object and nothing else.
    grants = [g for g in resources(doc, "aws_iam_role_policy").values() if g["name"].startswith("carrier-publish-")]
    assert len(grants) == len(published)
    for policy in grants:
        peer = re.fullmatch(r"carrier-publish-(.+)-certificate", policy["name"]).group(1)
        (put,) = [s for s in policy_statements(doc, policy) if s["actions"] == ["s3:PutObject"]]
        assert put["resources"][0].endswith(f"/certificates/{peer}.pem"), put


def test_replication_with_a_certificate_of_the_users_skips_verification(app):
    """A user's certificate names a host; replication reaches the nodes at addresses, so nothing to pin."""
    settings = HarborHaSettings().replace(
        tls_certificate="arn:aws:secretsmanager:us-east-1:123456789012:secret:harbor-tls-AbCdEf")
    stack = stack_class("master-slaves")(app, "solution-master-slaves-own-certificate", settings=settings,
                                         local_endpoint=TEST_LOCAL_ENDPOINT)
    doc = json.loads(CdktfTesting.synth(stack))
    master = next(body for key, body in resources(doc, "aws_instance").items() if key.startswith("master_"))
    (configure,) = [c for c in argv_commands(master) if c[:2] == ["python3", "/opt/harbor-ha/replication.py"]]
    assert configure[-1] == "--insecure" and "--ca-bundle" not in configure
    assert "gather-peer-certificates.sh" not in master["user_data"]
    assert not [g for g in resources(doc, "aws_iam_role_policy").values() if "publish" in g["name"]]


# AWS-level names of a stack: (Terraform type, attribute) -> the longest value AWS (or the provider, for a
# name_prefix it extends by 26 characters) accepts. Tags named "Name" are checked for distinctness too.
AWS_NAME_LIMITS = {
    ("aws_db_instance", "identifier"): 63, ("aws_db_instance", "final_snapshot_identifier"): 255,
    ("aws_db_subnet_group", "name"): 255, ("aws_db_parameter_group", "name_prefix"): 229,
    ("aws_elasticache_replication_group", "replication_group_id"): 40, ("aws_elasticache_subnet_group", "name"): 255,
    ("aws_kms_alias", "name"): 256, ("aws_iam_role", "name_prefix"): 38,
    ("aws_iam_instance_profile", "name_prefix"): 38,
    ("aws_secretsmanager_secret", "name_prefix"): 480, ("aws_s3_bucket", "bucket_prefix"): 37,
    ("aws_security_group", "name"): 255, ("aws_security_group", "name_prefix"): 100, ("aws_route53_zone", "name"): 253,
}


def aws_names(doc: dict) -> dict[str, int]:
    """Every literal AWS-level name of a synthesized stack -> its limit (Name tags: 256)."""
    names = {}
    for kind, by_name in doc.get("resource", {}).items():
        for body in by_name.values():
            for (limited_kind, attribute), limit in AWS_NAME_LIMITS.items():
                if kind == limited_kind and isinstance(body.get(attribute), str) and "${" not in body[attribute]:
                    names[body[attribute]] = limit
            tag = (body.get("tags") or {}).get("Name")
            if isinstance(tag, str) and "${" not in tag:
                names[tag] = 256
    return names


def test_no_two_stacks_share_an_aws_name_and_each_name_carries_its_stack(stacks):
    owners: dict[str, set[str]] = {}
    for name, (stack, doc) in stacks.items():
        prefix = stack.settings.resource_prefix
        for value in aws_names(doc):
            assert prefix in value, f"{name}: {value!r} does not carry {prefix!r}"
            owners.setdefault(value, set()).add(name)
    assert {value: sorted(by) for value, by in owners.items() if len(by) > 1} == {}


@pytest.mark.parametrize("name", STACK_NAMES)
def test_stack_is_tagged_with_its_deployment_and_itself(stacks, name):
    for provider in stacks[name][1]["provider"]["aws"]:
        assert provider["default_tags"][0]["tags"] == {"harbor-ha:deployment": "harbor", "harbor-ha:stack": name}


def test_names_of_the_longest_deployment_name_fit_aws_limits(app):
    """A 20-character name (the longest allowed) and the most replicas: every name within its AWS limit."""
    settings = HarborHaSettings(name="abcdefghij-lmnopqrst", replica_count=10)
    for name in STACK_NAMES:
        doc = json.loads(CdktfTesting.synth(stack_class(name)(app, f"longest-{name}", settings=settings,
                                                              local_endpoint=TEST_LOCAL_ENDPOINT)))
        too_long = {value: limit for value, limit in aws_names(doc).items() if len(value) > limit}
        assert too_long == {}, name


@pytest.fixture(scope="module")
def validated(tmp_path_factory, stacks):
    """terraform validate of every stack, with the real provider schema (one init per stack)."""
    terraform = require_tool("terraform")
    env = terraform_env()
    results = {}
    for name, (_, doc) in stacks.items():
        workdir = tmp_path_factory.mktemp(name)
        (workdir / "cdk.tf.json").write_text(json.dumps(doc))
        init = subprocess.run([terraform, "init", "-backend=false", "-input=false", "-no-color"], cwd=workdir,
                              env=env, capture_output=True, text=True, timeout=300)
        assert init.returncode == 0, init.stderr
        validate = subprocess.run([terraform, "validate", "-json"], cwd=workdir, env=env, capture_output=True,
                                  text=True, timeout=300)
        results[name] = json.loads(validate.stdout)
    return results


@pytest.mark.parametrize("name", STACK_NAMES)
def test_terraform_validates_the_stack(validated, name):
    assert validated[name]["valid"], json.dumps(validated[name]["diagnostics"], indent=2)


def test_cdktf_cli_synthesizes_active_active_that_terraform_validates(tmp_path):
    """The real CLI (`npx cdktf synth`, which runs main.py through pipenv), then terraform validate on its output."""
    npx = require_tool("npx")
    if not (PROJECT / "node_modules" / ".bin" / "cdktf").exists() or not shutil.which("pipenv"):
        message = "the cdktf CLI (npm ci) and pipenv are needed"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    outdir = tmp_path / "cdktf.out"
    env = {**os.environ, "HARBOR_HA_STACKS": "active-active", "PIPENV_VENV_IN_PROJECT": "1",
           "CHECKPOINT_DISABLE": "1", "CDKTF_DISABLE_PLUGIN_CACHE_ENV": "1"}
    result = subprocess.run([npx, "cdktf", "synth", "--output", str(outdir)], cwd=PROJECT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    stack_dir = outdir / "stacks" / "active-active"
    terraform = require_tool("terraform")
    tf_env = terraform_env()
    assert subprocess.run([terraform, "init", "-backend=false", "-input=false"], cwd=stack_dir, env=tf_env,
                          capture_output=True, timeout=300).returncode == 0
    validate = subprocess.run([terraform, "validate", "-json"], cwd=stack_dir, env=tf_env, capture_output=True,
                              text=True, timeout=300)
    assert json.loads(validate.stdout)["valid"], validate.stdout


# What a Terraform reference in user-data can become at apply: the longest are ARNs and endpoints (~100).
RESOLVED_REFERENCE = "r" * 128
USER_DATA_MARGIN = 1024


@pytest.mark.parametrize("name", STACK_NAMES)
def test_every_user_data_fits_ec2s_limit_with_room_to_grow(stacks, name):
    """EC2 refuses user-data over 16,384 bytes (moto does not check). Every reference counted at 128 bytes,
    at least 1 KiB must stay free; programs beyond that travel as an artefact the node fetches."""
    from harbor_ha.cloud_init import USER_DATA_LIMIT

    for instance in instances(stacks[name][1]):
        resolved = re.sub(r"\$\{[^}]*\}", RESOLVED_REFERENCE, instance["user_data"])
        size = len(resolved.encode())
        assert size <= USER_DATA_LIMIT - USER_DATA_MARGIN, f"{name} {instance['tags']['Name']}: {size} bytes"


def test_master_slaves_logs_dns_queries_in_us_east_1_wherever_it_runs(app, synth):
    settings = HarborHaSettings(region="eu-west-1", secondary_region="eu-central-1", stacks=("master-slaves",))
    doc = synth(stack_class("master-slaves")(app, "dns-query-log-eu", settings=settings,
                                             local_endpoint=TEST_LOCAL_ENDPOINT))
    regions = {p.get("alias"): p["region"] for p in doc["provider"]["aws"]}
    (group,) = resources(doc, "aws_cloudwatch_log_group").values()
    assert regions[group["provider"].removeprefix("aws.")] == "us-east-1" and regions[None] == "eu-west-1"
    assert group["retention_in_days"] >= 365 and group["kms_key_id"].startswith("${aws_kms_key.")
    (query_log,) = resources(doc, "aws_route53_query_log").values()
    assert query_log["zone_id"] == "${aws_route53_zone.zone.zone_id}"
