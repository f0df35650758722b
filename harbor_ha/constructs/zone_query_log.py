"""DNS query logging of a public Route 53 hosted zone: every query Route 53 answers for the zone, to a
CloudWatch Logs group encrypted with its own KMS key and kept ``retention_days``.

Route 53 writes query logs only to a log group in us-east-1, whatever the zone's stack region: build this
construct in a us-east-1 scope (``RegionScope`` with a us-east-1 provider, or the stack itself there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harbor_ha.aws import (
    CloudwatchLogGroup, CloudwatchLogResourcePolicy, Construct, DataAwsCallerIdentity, DataAwsIamPolicyDocument,
    DataAwsIamPolicyDocumentStatement, DataAwsIamPolicyDocumentStatementCondition,
    DataAwsIamPolicyDocumentStatementPrincipals, DataAwsPartition, Route53QueryLog,
)
from harbor_ha.constructs.data_tier import customer_key, require, require_whole

QUERY_LOG_REGION = "us-east-1"
# What CloudWatch Logs accepts as retention (days).
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)
_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")


@dataclass(frozen=True)
class ZoneQueryLogProps:
    name: str
    """Deployment name: the log group is ``/aws/route53/<name>/<zone name>``, the key ``alias/<name>-dns-logs``."""
    zone_id: str
    """The hosted zone whose queries are logged."""
    zone_name: str
    """The zone's DNS name."""
    retention_days: int = 365
    """Days a query log is kept, one of ``RETENTION_DAYS``. Default 365."""

    def __post_init__(self) -> None:
        require(_NAME_RE.fullmatch(self.name or ""), "name", self.name,
                "1-40 lower-case letters, digits and '-', starting with a letter")
        require_whole(self, "retention_days", 1, 3653)
        require(self.retention_days in RETENTION_DAYS, "retention_days", self.retention_days,
                "one of " + ", ".join(map(str, RETENTION_DAYS)))


class ZoneQueryLog(Construct):
    """Attributes: ``log_group_name``, ``log_group_arn``."""

    def __init__(self, scope: Construct, id_: str, *, props: ZoneQueryLogProps) -> None:
        super().__init__(scope, id_)
        partition = DataAwsPartition(self, "partition").partition
        account = DataAwsCallerIdentity(self, "account").account_id
        self.log_group_name = f"/aws/route53/{props.name}/{props.zone_name}"
        self.log_group_arn = f"arn:{partition}:logs:{QUERY_LOG_REGION}:{account}:log-group:{self.log_group_name}"
        # CloudWatch Logs encrypts under its own principal, for this log group only.
        logs_may_use_key = {
            "Sid": "CloudWatchLogsEncryptsThisLogGroup", "Effect": "Allow",
            "Principal": {"Service": f"logs.{QUERY_LOG_REGION}.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            "Resource": "*",
            "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": self.log_group_arn}}}
        key = customer_key(self, alias=f"{props.name}-dns-logs", description=f"{props.name}: DNS query logs",
                           service_statements=[logs_may_use_key])
        group = CloudwatchLogGroup(self, "log-group", name=self.log_group_name, kms_key_id=key.arn,
                                   retention_in_days=props.retention_days)
        route53_may_write = DataAwsIamPolicyDocument(self, "route53-may-write", statement=[
            DataAwsIamPolicyDocumentStatement(
                effect="Allow", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{self.log_group_arn}:*"],
                principals=[DataAwsIamPolicyDocumentStatementPrincipals(
                    type="Service", identifiers=["route53.amazonaws.com"])],
                condition=[DataAwsIamPolicyDocumentStatementCondition(
                    test="StringEquals", variable="aws:SourceAccount", values=[account])])])
        policy = CloudwatchLogResourcePolicy(self, "route53-policy", policy_name=f"{props.name}-route53-query-logs",
                                             policy_document=route53_may_write.json)
        Route53QueryLog(self, "query-log", zone_id=props.zone_id, cloudwatch_log_group_arn=group.arn,
                        depends_on=[policy])
