"""The S3 bucket that holds Harbor's image layers and manifests (the registry's ``storage_service.s3``).

Private and encrypted by default: its own KMS key (rotated yearly, S3 bucket keys to cut KMS calls),
all four public-access blocks, object ownership enforced (ACLs off), TLS-only bucket policy, versioning
so a deleted or overwritten blob can be recovered, and a lifecycle that cleans up after aborted uploads
and old versions.
"""

from __future__ import annotations

from dataclasses import dataclass

from harbor_ha.aws import (
    Construct, DataAwsIamPolicyDocument, DataAwsIamPolicyDocumentStatement, DataAwsPartition,
    DataAwsIamPolicyDocumentStatementCondition, DataAwsIamPolicyDocumentStatementPrincipals, IamRole, IamRolePolicy,
    S3Bucket, S3BucketLifecycleConfiguration, S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload, S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration, S3BucketPolicy,
    S3BucketServerSideEncryptionConfigurationA, S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from harbor_ha.constructs.checkov import skip_check
from harbor_ha.constructs.interfaces import AccessLogSink
from harbor_ha import rules
from harbor_ha.constructs.data_tier import (
    customer_key, grant, private_versioned, require_rule, require_rule_value, require_whole, statement,
)

# What the distribution S3 storage driver Harbor's registry uses calls (its documented IAM policy).
BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads")
OBJECT_ACTIONS = ("s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:ListMultipartUploadParts",
                  "s3:AbortMultipartUpload")
KEY_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*")


@dataclass(frozen=True)
class RegistryStorageProps:
    name: str
    """Deployment name: the bucket is named ``<name>-registry-<random suffix>`` and the key alias
    ``alias/<name>-registry``."""
    noncurrent_version_expiration_days: int = 30
    """Days an overwritten or deleted object version is kept before S3 expires it (1-3650). Default 30."""
    abort_incomplete_upload_days: int = 7
    """Days after which S3 aborts a multipart upload that never completed (1-365). Default 7."""
    force_destroy: bool = False
    """Let ``terraform destroy`` delete a bucket that still holds images. Default False."""
    access_logs: AccessLogSink | None = None
    """A ``LogBucket`` (same region) that receives the bucket's S3 server access logs. Default none: no
    access logging."""

    def __post_init__(self) -> None:
        require_rule(self, "name", rules.STORAGE_NAME)
        require_whole(self, "noncurrent_version_expiration_days", 1, 3650)
        require_whole(self, "abort_incomplete_upload_days", 1, 365)


class RegistryStorage(Construct):
    """Attributes: ``bucket_name``, ``bucket_arn``, ``kms_key_arn``, ``region``."""

    def __init__(self, scope: Construct, id_: str, *, props: RegistryStorageProps) -> None:
        super().__init__(scope, id_)
        self.key = customer_key(self, alias=f"{props.name}-registry",
                                description=f"{props.name}: Harbor registry image storage")
        bucket = S3Bucket(self, "bucket", bucket_prefix=f"{props.name}-registry-", force_destroy=props.force_destroy)
        skip_check(bucket, "CKV_AWS_144", "images reach another region through Harbor's own replication; a second "
                   "copy beside Harbor's would diverge from its database")
        skip_check(bucket, "CKV2_AWS_62", "nothing consumes events of the image bucket; Harbor tracks blobs in its "
                   "database")
        if props.access_logs is not None:
            props.access_logs.log_access_to(self, bucket, props.name)
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.kms_key_arn = self.key.arn
        self.region = bucket.region

        versioning = private_versioned(self, bucket)
        S3BucketServerSideEncryptionConfigurationA(self, "encryption", bucket=bucket.id, rule=[
            S3BucketServerSideEncryptionConfigurationRuleA(
                bucket_key_enabled=True,
                apply_server_side_encryption_by_default=(
                    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm="aws:kms", kms_master_key_id=self.key.arn)))])
        # The lifecycle rule for noncurrent versions needs versioning in place first.
        S3BucketLifecycleConfiguration(self, "lifecycle", bucket=bucket.id, depends_on=[versioning], rule=[
            S3BucketLifecycleConfigurationRule(
                id="abort-uploads-and-expire-old-versions", status="Enabled",
                filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                abort_incomplete_multipart_upload=[S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                    days_after_initiation=props.abort_incomplete_upload_days)],
                noncurrent_version_expiration=[S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                    noncurrent_days=props.noncurrent_version_expiration_days)])])
        tls_only = DataAwsIamPolicyDocument(self, "tls-only", statement=[DataAwsIamPolicyDocumentStatement(
            sid="DenyInsecureTransport", effect="Deny", actions=["s3:*"],
            resources=[bucket.arn, f"{bucket.arn}/*"],
            principals=[DataAwsIamPolicyDocumentStatementPrincipals(type="*", identifiers=["*"])],
            condition=[DataAwsIamPolicyDocumentStatementCondition(
                test="Bool", variable="aws:SecureTransport", values=["false"])])])
        S3BucketPolicy(self, "policy", bucket=bucket.id, policy=tls_only.json)

    def grant_read(self, role: IamRole) -> IamRolePolicy:
        """Let ``role`` read objects (e.g. a boot script this bucket carries), nothing more."""
        return grant(self, role, "read", [
            statement(("s3:GetObject",), [f"{self.bucket_arn}/*"]),
            statement(("kms:Decrypt",), [self.kms_key_arn]),
        ])

    def grant_put_object(self, role: IamRole, key: str, purpose: str) -> IamRolePolicy:
        """Let ``role`` write the one object ``key`` (e.g. a node publishing its certificate), nothing more."""
        return grant(self, role, purpose, [
            statement(("s3:PutObject",), [f"{self.bucket_arn}/{key}"]),
            statement(("kms:GenerateDataKey",), [self.kms_key_arn]),
        ])

    def grant_read_write(self, role: IamRole) -> IamRolePolicy:
        """Let ``role`` do exactly what Harbor's registry storage driver does on this bucket and its key."""
        return grant_registry_driver(self, role, self.bucket_arn, self.kms_key_arn)

    @staticmethod
    def from_attributes(scope: Construct, id_: str, *, bucket_name: str, region: str,
                        kms_key_arn: str) -> "ExistingBucket":
        """An existing S3 bucket of your own, encrypted with the KMS key ``kms_key_arn`` (SSE-KMS), for
        ``HarborFleetProps.storage``: nothing of it is created or changed; ``grant_read_write`` gives a role
        what Harbor's storage driver needs. Each argument may be a Terraform reference."""
        return ExistingBucket(scope, id_, bucket_name=bucket_name, region=region, kms_key_arn=kms_key_arn)


def grant_registry_driver(scope: Construct, role: IamRole, bucket_arn: str, kms_key_arn: str) -> IamRolePolicy:
    """Let ``role`` do exactly what Harbor's registry storage driver does on the bucket and its key."""
    return grant(scope, role, "read-write", [
        statement(BUCKET_ACTIONS, [bucket_arn]),
        statement(OBJECT_ACTIONS, [f"{bucket_arn}/*"]),
        statement(KEY_ACTIONS, [kms_key_arn]),
    ])


class ExistingBucket(Construct):
    """An image bucket made outside harbor-ha (``RegistryStorage.from_attributes``), an ``ImageStorage``.
    Attributes: ``bucket_name``, ``bucket_arn``, ``region``, ``kms_key_arn``."""

    def __init__(self, scope: Construct, id_: str, *, bucket_name: str, region: str, kms_key_arn: str) -> None:
        require_rule_value("bucket_name", bucket_name, rules.BUCKET_NAME_OR_REFERENCE)
        require_rule_value("region", region, rules.REGION_OR_REFERENCE)
        require_rule_value("kms_key_arn", kms_key_arn, rules.KMS_KEY_ARN_OR_REFERENCE)
        super().__init__(scope, id_)
        self.bucket_name = bucket_name
        self.region = region
        self.kms_key_arn = kms_key_arn
        self.bucket_arn = f"arn:{DataAwsPartition(self, 'partition').partition}:s3:::{bucket_name}"

    def grant_read_write(self, role: IamRole) -> IamRolePolicy:
        """Let ``role`` do exactly what Harbor's registry storage driver does on this bucket and its key."""
        return grant_registry_driver(self, role, self.bucket_arn, self.kms_key_arn)
