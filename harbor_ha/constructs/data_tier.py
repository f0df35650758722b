"""What the data-tier constructs (network, storage, database, cache) share: props checks, a
customer-managed KMS key per data store, a security group that admits nobody until ``allow_from(peer)``,
and inline role grants."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from harbor_ha.aws import (
    Construct, DataAwsCallerIdentity, DataAwsIamPolicyDocument, DataAwsIamPolicyDocumentStatement, DataAwsPartition,
    IamRole, IamRolePolicy, KmsAlias, KmsKey, S3Bucket, S3BucketOwnershipControls, S3BucketOwnershipControlsRule,
    S3BucketPublicAccessBlock, S3BucketVersioningA, S3BucketVersioningVersioningConfiguration, SecurityGroup,
    TerraformStack, VpcSecurityGroupIngressRule,
)
from harbor_ha.constructs.connections import allow_tcp
from harbor_ha.constructs.interfaces import Connectable
from harbor_ha import rules


def require(ok: object, prop: str, value: object, allowed: str) -> None:
    """Reject a bad prop: a ValueError naming the prop, its value and what is allowed."""
    if not ok:
        shown = list(value) if isinstance(value, tuple) else value
        raise ValueError(f"{prop} = {shown!r}: allowed is {allowed}")


def require_rule(props: object, prop: str, rule) -> None:
    """Reject ``props.<prop>`` unless it meets ``rule`` (a ``harbor_ha.rules.Rule``)."""
    require_rule_value(prop, getattr(props, prop), rule)


def require_rule_value(name: str, value: object, rule) -> None:
    """Reject the argument ``name`` unless its ``value`` meets ``rule`` (a ``harbor_ha.rules.Rule``)."""
    require(rule.ok(value), name, value, rule.allowed)


def require_whole(props: object, prop: str, low: int, high: int) -> None:
    """Reject ``props.<prop>`` unless it is a whole number from ``low`` to ``high``."""
    value = getattr(props, prop)
    require(isinstance(value, int) and not isinstance(value, bool) and low <= value <= high, prop, value,
            f"a whole number from {low} to {high}")


def private_versioned(scope: Construct, bucket: S3Bucket) -> S3BucketVersioningA:
    """What every bucket of harbor-ha has: no public access, no ACLs (the owner owns every object), and
    versioning (returned: a lifecycle rule for noncurrent versions must wait for it)."""
    S3BucketPublicAccessBlock(scope, "public-access-block", bucket=bucket.id, block_public_acls=True,
                              block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True)
    S3BucketOwnershipControls(scope, "ownership", bucket=bucket.id,
                              rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"))
    return S3BucketVersioningA(scope, "versioning", bucket=bucket.id,
                               versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"))


def customer_key(scope: Construct, *, alias: str, description: str,
                 service_statements: Sequence[Mapping[str, Any]] = ()) -> KmsKey:
    """A symmetric KMS key with yearly rotation, plus ``alias/<alias>`` so operators can find it.

    Its key policy is written out: AWS's default one (the account administers the key, and the account's
    IAM policies decide who may use it: the grants below name this key's ARN), plus
    ``service_statements`` (policy JSON) for an AWS service that uses the key under its own principal
    (CloudWatch Logs). The policy is the key's own JSON, not an IAM policy document: in a key policy,
    resource "*" means this key and nothing else."""
    partition = DataAwsPartition(scope, "key-partition").partition
    account = DataAwsCallerIdentity(scope, "key-account").account_id
    account_statement = {"Sid": "AccountAdministersAndIamPoliciesGrant", "Effect": "Allow",
                         "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"}, "Action": "kms:*",
                         "Resource": "*"}
    policy = json.dumps({"Version": "2012-10-17", "Statement": [account_statement, *service_statements]})
    key = KmsKey(scope, "key", description=description, enable_key_rotation=True, deletion_window_in_days=30,
                 policy=policy)
    KmsAlias(scope, "key-alias", name=f"alias/{alias}", target_key_id=key.key_id)
    return key


def ephemeral_random_password(scope: Construct, id_: str, **arguments: object) -> str:
    """A reference to a password Secrets Manager generates that never reaches plan or state: Terraform's
    ephemeral ``aws_secretsmanager_random_password`` (``arguments`` are its own). Use it only in write-only
    arguments (``*_wo``). cdktf 0.21 has no binding for ephemeral resources: the block is written into the
    stack's JSON."""
    name = "_".join([*scope.node.path.split("/")[1:], id_])
    TerraformStack.of(scope).add_override(f"ephemeral.aws_secretsmanager_random_password.{name}", arguments)
    return f"${{ephemeral.aws_secretsmanager_random_password.{name}.random_password}}"


def grant(scope: Construct, role: IamRole, purpose: str,
          statements: Sequence[DataAwsIamPolicyDocumentStatement]) -> IamRolePolicy:
    """An inline policy on ``role`` named for ``purpose``; one per (construct, role, purpose)."""
    suffix = f"{purpose}-{role.friendly_unique_id}"
    document = DataAwsIamPolicyDocument(scope, f"policy-{suffix}", statement=list(statements))
    return IamRolePolicy(scope, f"grant-{suffix}", role=role.name, name=f"{scope.node.id}-{purpose}",
                         policy=document.json)


def statement(actions: Sequence[str], resources: Sequence[str]) -> DataAwsIamPolicyDocumentStatement:
    return DataAwsIamPolicyDocumentStatement(effect="Allow", actions=list(actions), resources=list(resources))


def secret_reader_statements(secret_arn: str, key_arn: str = "") -> list[DataAwsIamPolicyDocumentStatement]:
    """Read one Secrets Manager secret encrypted with the customer key ``key_arn`` (none: the AWS managed key
    ``aws/secretsmanager``, which every principal of the account may use through Secrets Manager)."""
    reads = [statement(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], [secret_arn])]
    return reads + ([statement(["kms:Decrypt"], [key_arn])] if key_arn else [])


class PortAdmission:
    """Ingress rules on the security group ``group_id`` for one TCP service port: one per ``allow_from(peer)``."""

    def __init__(self, scope: Construct, *, group_id: str, port: int, service: str) -> None:
        self._scope = scope
        self._service = service
        self._peers = 0
        self.port = port
        self.group_id = group_id

    def allow_from(self, peer: Connectable) -> VpcSecurityGroupIngressRule:
        self._peers += 1
        return allow_tcp(self._scope, f"allow-from-{self._peers}", to_group_id=self.group_id,
                         from_group_id=peer.security_group_id, port=self.port,
                         description=f"{self._service} clients")


class ClosedPort(PortAdmission):
    """A security group for one TCP service port that admits nobody until ``allow_from(peer)``.

    It has no egress rules either: a database or cache only answers connections, and security groups are
    stateful. Ingress rules are separate resources, so the group itself declares none inline."""

    def __init__(self, scope: Construct, *, name: str, vpc_id: str, port: int, service: str) -> None:
        self.group = SecurityGroup(scope, "security-group", name=name, vpc_id=vpc_id,
                                   description=f"{service}: admits only the groups allowed in", egress=[])
        super().__init__(scope, group_id=self.group.id, port=port, service=service)


class ExistingStore(Construct):
    """A data store made outside harbor-ha, given by attributes (what the ``from_attributes`` importers
    return): its security group admits the peers given to ``allow_from``, and ``grant_read_secret`` lets a
    role read its credentials secret. Nothing of the store itself is created or changed.

    A subclass names its ``service`` and which of its attributes are the host, the port and the secret ARN;
    every attribute given becomes an attribute of the object, a bad one is reported by its name."""

    service = ""
    host_attribute = port_attribute = secret_attribute = ""

    def __init__(self, scope: Construct, id_: str, *, security_group_id: str, secret_kms_key_arn: str,
                 **attributes: object) -> None:
        host, port, secret_arn = (attributes[name] for name in (self.host_attribute, self.port_attribute,
                                                                self.secret_attribute))
        require_rule_value(self.host_attribute, host, rules.HOST_OR_REFERENCE)
        require(rules.PORT.ok(port), self.port_attribute, port, f"{rules.PORT.allowed}, known at synth time")
        require_rule_value(self.secret_attribute, secret_arn, rules.SECRET_ARN_OR_REFERENCE)
        require_rule_value("security_group_id", security_group_id, rules.SECURITY_GROUP_ID_OR_REFERENCE)
        require(not secret_kms_key_arn or rules.KMS_KEY_ARN_OR_REFERENCE.ok(secret_kms_key_arn),
                "secret_kms_key_arn", secret_kms_key_arn,
                f"empty (the AWS managed key aws/secretsmanager) or {rules.KMS_KEY_ARN_OR_REFERENCE.allowed}")
        super().__init__(scope, id_)
        for name, value in attributes.items():
            setattr(self, name, value)
        self.security_group_id = security_group_id
        self._secret = (secret_arn, secret_kms_key_arn)
        self._admission = PortAdmission(self, group_id=security_group_id, port=port, service=self.service)

    def allow_from(self, peer: Connectable) -> VpcSecurityGroupIngressRule:
        """Admit members of ``peer``'s security group to the store's port (a rule on its security group)."""
        return self._admission.allow_from(peer)

    def grant_read_secret(self, role: IamRole, purpose: str) -> IamRolePolicy:
        """Let ``role`` read the store's credentials secret (and decrypt it with its key, if a customer key)."""
        return grant(self, role, purpose, secret_reader_statements(*self._secret))
