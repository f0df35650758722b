"""What the nodes report about themselves, where harbor-ha reads it without reaching into the VPC: a tag on
the node's own instance, which a timer on the node keeps fresh.

* ``harbor-ha:health`` on a Harbor node: ``<healthy|unhealthy> <harbor version> <UTC time>``, written by
  health-report every 30 s from the node's own ``/api/v2.0/health`` body. ``harbor-ha up`` waits for a
  fresh ``healthy`` report of the new release from each replaced node before it touches the next one.
* ``harbor-ha:lb-pool`` on a director: the version of the real-server parameter its LVS pool holds
  (written by lb-pool). ``harbor-ha up`` waits for both directors before it destroys a drained server.

A tag rather than an SSM parameter per node: it lives on the node itself, goes away with it, and IAM can
limit the writer to that one tag key on the instances of its own group and deployment (``aws:TagKeys``,
``aws:ResourceTag``). Limiting it further, to the calling instance alone, would take the policy variable
``ec2:SourceInstanceARN`` as the whole Resource, which the local emulator's IAM refuses (and which is
not verified here on AWS); within one group the nodes share a role anyway. Terraform ignores these tags
on the instances, so a report never makes a plan non-empty.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from harbor_ha.rules import DEPLOYMENT_TAG_KEY, ROLE_TAG_KEY

HEALTH_TAG = "harbor-ha:health"
LB_POOL_TAG = "harbor-ha:lb-pool"
HEALTHY = "healthy"


def report_tags_ignored(*keys: str) -> list[str]:
    """``ignore_changes`` entries for report tags (``tags_all`` too: the provider plans it separately)."""
    return [f'{attribute}["{key}"]' for key in keys for attribute in ("tags", "tags_all")]


def report_statement(partition: str, deployment: str, role: str, key: str):
    """An IAM statement letting the instances of ``role`` in ``deployment`` set the report tag ``key``, on
    instances of that role and deployment only, and no other tag."""
    from harbor_ha.aws import DataAwsIamPolicyDocumentStatement, DataAwsIamPolicyDocumentStatementCondition

    def condition(test: str, variable: str, values: list[str]):
        return DataAwsIamPolicyDocumentStatementCondition(test=test, variable=variable, values=values)

    return DataAwsIamPolicyDocumentStatement(
        effect="Allow", actions=["ec2:CreateTags"], resources=[f"arn:{partition}:ec2:*:*:instance/*"],
        condition=[condition("StringEquals", f"aws:ResourceTag/{ROLE_TAG_KEY}", [role]),
                   condition("StringEquals", f"aws:ResourceTag/{DEPLOYMENT_TAG_KEY}", [deployment]),
                   condition("ForAllValues:StringEquals", "aws:TagKeys", [key])])


@dataclass(frozen=True)
class HealthReport:
    """One node's ``harbor-ha:health`` tag, parsed."""

    status: str
    version: str
    at: dt.datetime

    @classmethod
    def parse(cls, value: str | None) -> "HealthReport | None":
        try:
            status, version, at = (value or "").split()
            return cls(status, version, dt.datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc))
        except ValueError:
            return None

    def value(self) -> str:
        return f"{self.status} {self.version} {self.at.strftime('%Y-%m-%dT%H:%M:%SZ')}"

    def healthy_at(self, version: str, since: dt.datetime) -> bool:
        """A ``healthy`` report of ``version`` made after ``since``."""
        return self.status == HEALTHY and self.version == version and self.at >= since
