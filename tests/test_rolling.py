"""How a Terraform plan becomes a roll (``harbor_ha.rolling.read_plan``): which changes stop or replace a member
of a redundant group, what is applied first, and the order. The plans here are shaped like ``terraform show
-json`` of a saved plan; tests/test_rolling_e2e.py reads real ones on the local target."""

from __future__ import annotations

from harbor_ha.rolling import Member, order, read_plan


def instance(address: str, actions: list[str], before: dict | None, after: dict | None, role: str = "harbor") -> dict:
    tags = {"Name": address.split(".")[1], "harbor-ha:role": role}
    if actions == ["update"]:
        after = {**before, **after}  # Terraform's "after" holds every attribute, changed or not
    for values in (before, after):
        if values is not None:
            values.setdefault("tags", tags)
    return {"address": address, "mode": "managed", "type": "aws_instance",
            "change": {"actions": actions, "before": before, "after": after, "after_unknown": {}}}


def other(address: str, actions=("update",)) -> dict:
    return {"address": address, "mode": "managed", "type": address.split(".")[0],
            "change": {"actions": list(actions), "before": {}, "after": {"x": 1}, "after_unknown": {}}}


def plan(*changes: dict, references: dict | None = None) -> dict:
    resources = [{"address": a, "expressions": {"instance": {"references": refs}}}
                 for a, refs in (references or {}).items()]
    return {"resource_changes": list(changes), "configuration": {"root_module": {"resources": resources}}}


def test_tag_and_volume_changes_are_not_rolled_but_a_type_change_is():
    tags_only = instance("aws_instance.h0", ["update"], {"id": "i-0", "tags": {"Name": "h0", "harbor-ha:role": "harbor",
                                                                               "x": "1"}},
                         {"tags": {"Name": "h0", "harbor-ha:role": "harbor", "x": "2"}})
    resized = instance("aws_instance.h1", ["update"], {"id": "i-1", "instance_type": "m6i.large"},
                       {"instance_type": "m6i.xlarge"})
    roll = read_plan(plan(tags_only, resized))
    assert [(m.address, m.action) for m in roll.members] == [("aws_instance.h1", "update")]
    assert roll.others == ["aws_instance.h0"]


def test_replacements_and_deletes_are_members_and_what_refers_to_them_waits():
    changes = plan(instance("aws_instance.h0", ["delete", "create"], {"id": "i-0", "private_ip": "10.0.0.1"}, {}),
                   instance("aws_instance.h2", ["delete"], {"id": "i-2", "private_ip": "10.0.0.3"}, None),
                   other("aws_eip_association.a"), other("aws_ssm_parameter.pool"), other("aws_kms_key.k"),
                   instance("aws_instance.h3", ["create"], None, {}), other("aws_iam_role_policy.p"),
                   references={"aws_eip_association.a": ["aws_instance.h0.id", "aws_instance.h0"],
                               "aws_iam_role_policy.p": ["data.aws_iam_policy_document.d.json"],
                               "data.aws_iam_policy_document.d": ["aws_ssm_parameter.pool.arn"]})
    roll = read_plan(changes, ("2.15.1", "2.15.2"))
    assert [(m.address, m.action, m.private_ip) for m in roll.members] == [
        ("aws_instance.h0", "replace", "10.0.0.1"), ("aws_instance.h2", "delete", "10.0.0.3")]
    assert roll.others == ["aws_kms_key.k", "aws_instance.h3"], \
        "the pool, and what depends on it through a data source, wait until the drained server is gone"
    assert roll.lines()[1] == "  0. RDS snapshot before Harbor 2.15.1 -> 2.15.2"
    assert roll.lines()[-1] == "  2. h2 (harbor) drained and destroyed"


def test_a_plan_without_members_is_applied_at_once():
    roll = read_plan(plan(other("aws_ssm_parameter.pool"), instance("aws_instance.h3", ["create"], None, {})))
    assert roll.members == [] and roll.lines() == []


def test_the_vip_holder_goes_last_in_its_group():
    members = [Member("a.0", "lb-0", "lb", "update", "i-a"), Member("a.1", "lb-1", "lb", "update", "i-b"),
               Member("h.0", "h-0", "harbor", "update", "i-c")]
    assert [m.name for m in order(members, {"i-a"})] == ["h-0", "lb-1", "lb-0"]
