"""RegistryStorage: a private, versioned, KMS-encrypted, TLS-only bucket, and a least-privilege grant."""

from __future__ import annotations

import pytest

from harbor_ha.aws import IamRole
from harbor_ha.constructs.storage import RegistryStorage, RegistryStorageProps
from harbor_ha.settings import HarborHaSettings
from harbor_ha.stacks.base import HarborHaStack
from harbor_ha.stacks.props import storage_props

from data_tier_helpers import ASSUME_EC2, assert_rejected, one, policy_statements


def build(app, stack_id, settings, synth, **props):
    stack = HarborHaStack(app, stack_id, settings=settings)
    storage = RegistryStorage(stack, "storage", props=RegistryStorageProps(name="harbor", **props))
    role = IamRole(stack, "harbor-role", assume_role_policy=ASSUME_EC2)
    storage.grant_read_write(role)
    return storage, synth(stack)


def test_bucket_is_private_versioned_encrypted_and_tls_only(app, stack_id, settings, synth):
    storage, doc = build(app, stack_id, settings, synth)
    bucket_name, bucket = one(doc, "aws_s3_bucket")
    bucket_id = f"${{aws_s3_bucket.{bucket_name}.id}}"
    bucket_arn = f"${{aws_s3_bucket.{bucket_name}.arn}}"
    assert bucket == {"bucket_prefix": "harbor-registry-", "force_destroy": False}

    key_name, key = one(doc, "aws_kms_key")
    assert key["enable_key_rotation"] is True
    assert one(doc, "aws_kms_alias")[1]["name"] == "alias/harbor-registry"

    (rule,) = one(doc, "aws_s3_bucket_server_side_encryption_configuration")[1]["rule"]
    assert rule == {"bucket_key_enabled": True, "apply_server_side_encryption_by_default": {
        "sse_algorithm": "aws:kms", "kms_master_key_id": f"${{aws_kms_key.{key_name}.arn}}"}}

    block = one(doc, "aws_s3_bucket_public_access_block")[1]
    assert block == {"bucket": bucket_id, "block_public_acls": True, "block_public_policy": True,
                     "ignore_public_acls": True, "restrict_public_buckets": True}
    assert one(doc, "aws_s3_bucket_ownership_controls")[1]["rule"] == {"object_ownership": "BucketOwnerEnforced"}
    versioning_name, versioning = one(doc, "aws_s3_bucket_versioning")
    assert versioning["versioning_configuration"] == {"status": "Enabled"}

    lifecycle = one(doc, "aws_s3_bucket_lifecycle_configuration")[1]
    (lifecycle_rule,) = lifecycle["rule"]
    assert lifecycle_rule["status"] == "Enabled"
    assert lifecycle_rule["abort_incomplete_multipart_upload"] == [{"days_after_initiation": 7}]
    assert lifecycle_rule["noncurrent_version_expiration"] == [{"noncurrent_days": 30}]
    assert f"aws_s3_bucket_versioning.{versioning_name}" in lifecycle["depends_on"]

    policy = one(doc, "aws_s3_bucket_policy")[1]
    (deny,) = policy_statements(doc, policy["policy"])
    assert deny["effect"] == "Deny" and deny["actions"] == ["s3:*"]
    assert deny["resources"] == [bucket_arn, f"{bucket_arn}/*"]
    assert deny["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
    assert deny["principals"] == [{"type": "*", "identifiers": ["*"]}]

    assert storage.bucket_arn.startswith("${TfToken[") and storage.kms_key_arn.startswith("${TfToken[")
    assert storage.region.startswith("${TfToken[") and storage.bucket_name.startswith("${TfToken[")


def test_grant_read_write_is_exactly_what_the_registry_driver_needs(app, stack_id, settings, synth):
    _, doc = build(app, stack_id, settings, synth)
    bucket_name, _ = one(doc, "aws_s3_bucket")
    key_name, _ = one(doc, "aws_kms_key")
    grant = one(doc, "aws_iam_role_policy")[1]
    assert grant["role"] == "${aws_iam_role.harbor-role.name}"
    statements = policy_statements(doc, grant["policy"])
    bucket_arn = f"${{aws_s3_bucket.{bucket_name}.arn}}"
    assert [(s["effect"], sorted(s["actions"]), s["resources"]) for s in statements] == [
        ("Allow", ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"], [bucket_arn]),
        ("Allow", ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListMultipartUploadParts",
                   "s3:PutObject"], [f"{bucket_arn}/*"]),
        ("Allow", ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"], [f"${{aws_kms_key.{key_name}.arn}}"]),
    ]


def test_lifecycle_days_and_force_destroy_are_configurable(app, stack_id, settings, synth):
    _, doc = build(app, stack_id, settings, synth, noncurrent_version_expiration_days=90,
                   abort_incomplete_upload_days=2, force_destroy=True)
    assert one(doc, "aws_s3_bucket")[1]["force_destroy"] is True
    (rule,) = one(doc, "aws_s3_bucket_lifecycle_configuration")[1]["rule"]
    assert rule["noncurrent_version_expiration"] == [{"noncurrent_days": 90}]
    assert rule["abort_incomplete_multipart_upload"] == [{"days_after_initiation": 2}]


def test_props_of_the_settings_destroys_only_unprotected_buckets():
    assert storage_props(HarborHaSettings()).force_destroy is True
    aws = storage_props(HarborHaSettings(name="reg", target="aws"))
    assert aws == RegistryStorageProps(name="reg", force_destroy=False)


@pytest.mark.parametrize(("props", "prop", "allowed"), [
    (dict(name="Harbor"), "name", "lower-case"),
    (dict(name="a" * 28), "name", "1-27"),
    (dict(noncurrent_version_expiration_days=0), "noncurrent_version_expiration_days", "from 1 to 3650"),
    (dict(abort_incomplete_upload_days=True), "abort_incomplete_upload_days", "from 1 to 365"),
])
def test_bad_props_name_the_prop_and_what_is_allowed(props, prop, allowed):
    assert_rejected(lambda: RegistryStorageProps(**{"name": "harbor", **props}), prop, allowed)


def test_storage_construct_snapshot(app, stack_id, settings, synth, snapshot):
    _, doc = build(app, stack_id, settings, synth)
    assert doc == snapshot
