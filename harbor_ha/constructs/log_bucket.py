"""The bucket that receives a deployment's logs in one region: S3 server access logs of its buckets and
the VPC flow logs.

Private (all four public-access blocks, ACLs off), versioned, TLS-only, encrypted with SSE-S3: S3 delivers
server access logs only to buckets with SSE-S3 default encryption, not SSE-KMS. Logs expire after
``retention_days``. Only S3's log delivery (for this account's buckets) and VPC flow-log delivery may write.
"""

from __future__ import annotations

from dataclasses import dataclass

from harbor_ha.aws import (
    Construct, DataAwsCallerIdentity, DataAwsIamPolicyDocument, DataAwsIamPolicyDocumentStatement,
    DataAwsIamPolicyDocumentStatementCondition, DataAwsIamPolicyDocumentStatementPrincipals, S3Bucket,
    S3BucketLifecycleConfiguration, S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload, S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter, S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
    S3BucketLoggingA, S3BucketPolicy, S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA, TerraformResource,
)
from harbor_ha.constructs.checkov import skip_check
from harbor_ha import rules
from harbor_ha.constructs.data_tier import private_versioned, require_rule, require_whole



@dataclass(frozen=True)
class LogBucketProps:
    name: str
    """Deployment name: the bucket is named ``<name>-logs-<random suffix>``."""
    retention_days: int = 365
    """Days a log object is kept, 1 to 3650. Default 365."""
    force_destroy: bool = False
    """Let ``terraform destroy`` delete the bucket while it holds logs. Default False."""

    def __post_init__(self) -> None:
        require_rule(self, "name", rules.LOG_BUCKET_NAME)
        require_whole(self, "retention_days", 1, 3650)


class LogBucket(Construct):
    """Attributes: ``bucket_name``, ``bucket_arn``, ``policy`` (what a log source must wait for)."""

    def __init__(self, scope: Construct, id_: str, *, props: LogBucketProps) -> None:
        super().__init__(scope, id_)
        bucket = S3Bucket(self, "bucket", bucket_prefix=f"{props.name}-logs-", force_destroy=props.force_destroy)
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        skip_check(bucket, "CKV_AWS_145", "S3 delivers server access logs only to buckets encrypted with SSE-S3, "
                   "not SSE-KMS")
        skip_check(bucket, "CKV_AWS_144", "logs stay in the region they describe; copy them elsewhere by policy of "
                   "your own")
        skip_check(bucket, "CKV2_AWS_62", "nothing consumes events of the log bucket")

        versioning = private_versioned(self, bucket)
        S3BucketServerSideEncryptionConfigurationA(self, "encryption", bucket=bucket.id, rule=[
            S3BucketServerSideEncryptionConfigurationRuleA(
                apply_server_side_encryption_by_default=(
                    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm="AES256")))])
        S3BucketLifecycleConfiguration(self, "lifecycle", bucket=bucket.id, depends_on=[versioning], rule=[
            S3BucketLifecycleConfigurationRule(
                id="expire-logs", status="Enabled", filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=props.retention_days)],
                noncurrent_version_expiration=[S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                    noncurrent_days=1)],
                abort_incomplete_multipart_upload=[S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                    days_after_initiation=1)])])

        account = DataAwsCallerIdentity(self, "account").account_id
        from_this_account = DataAwsIamPolicyDocumentStatementCondition(
            test="StringEquals", variable="aws:SourceAccount", values=[account])

        def delivery(sid: str, service: str, actions: list[str], resource: str) -> DataAwsIamPolicyDocumentStatement:
            return DataAwsIamPolicyDocumentStatement(
                sid=sid, effect="Allow", actions=actions, resources=[resource], condition=[from_this_account],
                principals=[DataAwsIamPolicyDocumentStatementPrincipals(type="Service", identifiers=[service])])

        document = DataAwsIamPolicyDocument(self, "policy-document", statement=[
            DataAwsIamPolicyDocumentStatement(
                sid="DenyInsecureTransport", effect="Deny", actions=["s3:*"],
                resources=[bucket.arn, f"{bucket.arn}/*"],
                principals=[DataAwsIamPolicyDocumentStatementPrincipals(type="*", identifiers=["*"])],
                condition=[DataAwsIamPolicyDocumentStatementCondition(
                    test="Bool", variable="aws:SecureTransport", values=["false"])]),
            delivery("S3ServerAccessLogs", "logging.s3.amazonaws.com", ["s3:PutObject"], f"{bucket.arn}/*"),
            delivery("FlowLogsWrite", "delivery.logs.amazonaws.com", ["s3:PutObject"], f"{bucket.arn}/AWSLogs/*"),
            delivery("FlowLogsCheck", "delivery.logs.amazonaws.com", ["s3:GetBucketAcl", "s3:ListBucket"],
                     bucket.arn),
        ])
        self.policy = S3BucketPolicy(self, "policy", bucket=bucket.id, policy=document.json)

    def log_access_to(self, scope: Construct, bucket: TerraformResource, prefix: str) -> S3BucketLoggingA:
        """Have S3 write the server access logs of ``bucket`` (an ``S3Bucket`` in ``scope``) here, under
        ``s3/<prefix>/``."""
        return S3BucketLoggingA(scope, "access-logging", bucket=bucket.id, target_bucket=self.bucket_name,
                                target_prefix=f"s3/{prefix}/", depends_on=[self.policy])
