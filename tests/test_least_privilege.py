"""Least privilege, listed: every IAM statement harbor-ha grants, with its actions and resources, from every
synthesized stack of both targets (``pytest -s`` prints the list). A wildcard resource only where AWS has no
resource-level permission for the action (or where the resource cannot be known), each with its reason
below; action wildcards only in Deny statements."""

from __future__ import annotations

import json
import re

import pytest

# Action -> why its statement may name resource "*".
WILDCARD_RESOURCE = {
    "ec2:DescribeAddresses": "EC2 Describe* calls support no resource-level permissions",
    # harbor_host: the KMS key of a user's own TLS secret is unknown to harbor-ha; the statement is bound to
    # kms:ViaService = secretsmanager.<region>, so the key is usable only through Secrets Manager.
    "kms:Decrypt": "the key of the user's TLS secret is unknown; only through Secrets Manager (kms:ViaService)",
}
# AWS managed policies harbor-ha attaches, and why.
MANAGED = {
    "AmazonSSMManagedInstanceCore": "SSM Session Manager on the VMs instead of SSH",
    "AmazonRDSEnhancedMonitoringRole": "RDS enhanced monitoring publishes OS metrics to CloudWatch Logs",
}


@pytest.fixture(scope="module")
def grants(synthesized_stacks) -> list[dict]:
    """Every statement of every policy document attached to a role (inline role policies)."""
    found = []
    for (target, stack), path in synthesized_stacks.items():
        doc = json.loads(path.read_text())
        documents = doc.get("data", {}).get("aws_iam_policy_document", {})
        for name, policy in doc.get("resource", {}).get("aws_iam_role_policy", {}).items():
            (document,) = re.findall(r"\$\{data\.aws_iam_policy_document\.([^.]+)\.json\}", policy["policy"])
            for statement in documents[document]["statement"]:
                found.append({"where": f"{target}/{stack}: {policy['//']['metadata']['path']}",
                              "effect": statement.get("effect", "Allow"), "actions": statement["actions"],
                              "resources": statement["resources"], "condition": statement.get("condition", [])})
    return found


def test_every_role_statement_is_listed_and_scoped(grants):
    assert len(grants) > 40
    print("\nIAM statements (identity policies of harbor-ha's roles):")
    for grant in sorted(grants, key=lambda g: g["where"]):
        print(f"  {grant['where']}: {grant['effect']} {', '.join(grant['actions'])} ON {', '.join(grant['resources'])}"
              + (" IF " + "; ".join(f"{c['variable']} {c['test']} {c['values']}" for c in grant["condition"])
                 if grant["condition"] else ""))
    for grant in grants:
        assert not any("*" in action for action in grant["actions"] if grant["effect"] == "Allow"
                       and not action.endswith("GenerateDataKey*")), f"an action wildcard: {grant}"
        if "*" in grant["resources"]:
            assert set(grant["actions"]) <= set(WILDCARD_RESOURCE), f"resource '*' without a reason: {grant}"
        else:
            assert all(resource.startswith(("${", "arn:")) for resource in grant["resources"]), grant


def test_the_unknown_key_is_usable_only_through_secrets_manager(app, synth):
    from harbor_ha.settings import HarborHaSettings
    from harbor_ha.stacks import stack_class

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:harbor-tls-AbCdEf"
    settings = HarborHaSettings(target="aws", tls_certificate=arn, stacks=("active-standby",))
    doc = synth(stack_class("active-standby")(app, "least-privilege-tls", settings=settings))
    statements = [s for document in doc["data"]["aws_iam_policy_document"].values() for s in document["statement"]]
    decrypt_anywhere = [s for s in statements if s["resources"] == ["*"] and "kms:Decrypt" in s["actions"]]
    assert [s["actions"] for s in decrypt_anywhere] == [["kms:Decrypt"]]
    (condition,) = decrypt_anywhere[0]["condition"]
    # Secrets Manager of the secret's own region (the nodes read it there).
    assert (condition["variable"], condition["values"]) == ("kms:ViaService", ["secretsmanager.us-east-1.amazonaws.com"])
    assert any(s["resources"] == [arn] and s["actions"] == ["secretsmanager:GetSecretValue"] for s in statements)


def test_managed_policies_are_the_listed_ones(synthesized_stacks):
    attached = set()
    for path in synthesized_stacks.values():
        doc = json.loads(path.read_text())
        for attachment in doc.get("resource", {}).get("aws_iam_role_policy_attachment", {}).values():
            attached.add(attachment["policy_arn"].rsplit("/", 1)[-1])
    assert attached == set(MANAGED), attached


def test_key_policies_give_the_account_and_named_services_only(synthesized_stacks):
    for path in synthesized_stacks.values():
        doc = json.loads(path.read_text())
        for name, key in doc.get("resource", {}).get("aws_kms_key", {}).items():
            for statement in json.loads(key["policy"])["Statement"]:
                principal = statement["Principal"]
                assert principal != "*" and principal.get("AWS", "").endswith(":root") or (
                    "Service" in principal and statement.get("Condition")), (name, statement)
