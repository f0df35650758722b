"""No plaintext secret in any synthesized stack or the user-data it carries, on both targets; the scan itself
finds a planted password, private key, access key and known value. (The Terraform state after a local deploy
is scanned by tests/test_e2e.py.)"""

from __future__ import annotations

import copy
import json

import pytest

from secret_scan import find_secrets, state_without_the_redis_token


@pytest.fixture(scope="module")
def documents(synthesized_stacks) -> dict[str, dict]:
    return {f"{target}/{stack}": json.loads(path.read_text()) for (target, stack), path in synthesized_stacks.items()}


def user_data(doc: dict) -> dict[str, str]:
    return {name: instance["user_data"] for name, instance in doc.get("resource", {}).get("aws_instance", {}).items()}


def test_no_secret_in_any_synthesized_stack(documents):
    found = {name: find_secrets(doc) for name, doc in documents.items()}
    assert not any(found.values()), json.dumps(found, indent=2)


def test_no_secret_in_any_user_data(documents):
    scripts = {f"{name}: {instance}": text for name, doc in documents.items()
               for instance, text in user_data(doc).items()}
    assert len(scripts) >= 10
    found = {name: find_secrets(text) for name, text in scripts.items()}
    assert not any(found.values()), json.dumps(found, indent=2)


PLANTED = [
    ("harbor_admin_password: Harbor12345", "literal secret"),
    ('export REDIS_PASSWORD="s3cr3t-value-42"', "literal secret"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow...", "private key"),
    ("aws_access_key_id = AKIAZ7QX2NPLW4KD9RTE", "AWS access key id"),
]


@pytest.mark.parametrize("planted,kind", PLANTED, ids=[kind for _, kind in PLANTED])
def test_a_planted_secret_is_found(documents, planted, kind):
    doc = copy.deepcopy(documents["aws/active-active"])
    instance = next(iter(doc["resource"]["aws_instance"].values()))
    instance["user_data"] += "\n" + planted + "\n"
    found = find_secrets(doc)
    assert any(line.startswith(kind) for line in found), found
    assert any(line.startswith(kind) for line in find_secrets(instance["user_data"])), "also in the script alone"


def test_a_known_value_is_found_wherever_it_is(documents):
    doc = copy.deepcopy(documents["local/master-slaves"])
    next(iter(doc["resource"]["aws_s3_bucket"].values()))["tags"] = {"note": "Zq7Xw2Vt9PaLm4Rk"}
    assert any("known secret value" in line for line in find_secrets(doc, known=["Zq7Xw2Vt9PaLm4Rk"]))


def test_the_state_may_hold_only_the_redis_token_and_only_marked_sensitive():
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:harbor-redis-auth-token-abc"
    state = {"resources": [
        {"type": "aws_elasticache_replication_group", "name": "group", "instances": [{
            "attributes": {"auth_token": "TokenValue0123456789", "id": "harbor-redis", "member_clusters": ["a"]},
            "sensitive_attributes": [[{"type": "get_attr", "value": "auth_token"}]]}]},
        {"type": "aws_secretsmanager_secret_version", "name": "token", "instances": [{
            "attributes": {"secret_string": "TokenValue0123456789", "secret_id": arn}, "sensitive_attributes": []}]},
        {"type": "aws_secretsmanager_secret_version", "name": "admin", "instances": [{
            "attributes": {"secret_string": "AdminPassword42xyz", "secret_id": arn + "-admin"},
            "sensitive_attributes": []}]},
    ]}
    rest, problems = state_without_the_redis_token(state, ["TokenValue0123456789"])
    assert problems == ["aws_secretsmanager_secret_version.token.secret_string holds the Redis token unmarked"]
    found = find_secrets(rest, known=["TokenValue0123456789"])
    assert found == ['literal secret: "secret_string": "AdminPassword42xyz'], "any other secret is still found"
