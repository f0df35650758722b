"""Assertions shared by the data-tier construct tests (network, storage, database, cache)."""

from __future__ import annotations

import re

import pytest

from conftest import resources

ASSUME_EC2 = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",'
              '"Principal":{"Service":"ec2.amazonaws.com"}}]}')
VPC = "vpc-0123456789abcdef0"
PRIVATE_SUBNETS = ("subnet-0000000000000001a", "subnet-0000000000000001b")


def one(doc: dict, kind: str) -> tuple[str, dict]:
    """The single resource of ``kind``: (name, body)."""
    found = resources(doc, kind)
    assert len(found) == 1, f"expected one {kind}, got {sorted(found)}"
    return next(iter(found.items()))


def policy_statements(doc: dict, policy_ref: str) -> list[dict]:
    """The statements of the ``aws_iam_policy_document`` whose ``.json`` is ``policy_ref``."""
    match = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(.+)\.json\}", policy_ref)
    assert match, f"{policy_ref!r} is not a policy document reference"
    return doc["data"]["aws_iam_policy_document"][match.group(1)]["statement"]


def assert_grants_secret_read(doc: dict, secret_arn_ref: str) -> None:
    """The stack's one role policy reads exactly the secret ``secret_arn_ref`` and decrypts with the one key."""
    key_name, _ = one(doc, "aws_kms_key")
    statements = policy_statements(doc, one(doc, "aws_iam_role_policy")[1]["policy"])
    assert [(sorted(s["actions"]), s["resources"]) for s in statements] == [
        (["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"], [secret_arn_ref]),
        (["kms:Decrypt"], [f"${{aws_kms_key.{key_name}.arn}}"]),
    ]


def assert_rejected(make, prop: str, allowed: str) -> None:
    """``make()`` raises a ValueError naming ``prop``, its value and (containing) ``allowed``."""
    with pytest.raises(ValueError, match=rf"^{prop} = .*: allowed is .*{re.escape(allowed)}"):
        make()
