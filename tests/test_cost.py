"""``harbor-ha cost``: each stack's monthly figure from its synthesized resources and the price table, unknown
types named instead of guessed, and the README's side-by-side table as the command prints it."""

from __future__ import annotations

import json
import pytest

from conftest import PROJECT
from harbor_ha.cli import main
from harbor_ha.compare import comparison_table
from harbor_ha.cost import DEFAULT_IMAGE_GIB, FREE_TYPES, RULES, estimate, load_prices
from harbor_ha.settings import STACK_NAMES


@pytest.fixture(scope="module")
def prices():
    return load_prices()


def test_price_table_states_its_source_date_and_regions(prices):
    assert prices["date"] and prices["kind"].startswith("on-demand")
    assert prices["regions"][0] == "us-east-1"
    for service in ("ec2", "rds", "elasticache", "public_ipv4", "nat_gateway", "s3", "kms", "secretsmanager",
                    "route53"):
        assert prices["sources"][service].startswith("https://aws.amazon.com/")


@pytest.mark.parametrize("name", STACK_NAMES)
def test_every_default_stack_is_priced_completely(default_docs, name, prices):
    result = estimate(default_docs[name], name, prices)
    assert result.unpriced == []
    assert result.total > 0
    kinds = set(default_docs[name]["resource"])
    assert kinds <= FREE_TYPES | set(RULES), f"no cost rule: {sorted(kinds - FREE_TYPES - set(RULES))}"


def test_active_active_adds_up_from_the_price_table(default_docs, prices):
    """The figure, recomputed by hand from the stack's defaults and the table."""
    p, h = prices, prices["hours_per_month"]
    expected = (2 * h * p["ec2_instance_hour"]["m6i.large"] + 2 * 100 * p["ebs_gb_month"]["gp3"]
                + 2 * h * p["ec2_instance_hour"]["t3.small"] + 2 * 16 * p["ebs_gb_month"]["gp3"]
                + 2 * h * p["rds_instance_hour"]["postgres"]["db.m6g.large"] + 2 * 50 * p["rds_storage_gb_month"]["gp3"]
                + 2 * h * p["elasticache_node_hour"]["cache.t4g.medium"]
                + 2 * h * p["nat_gateway_hour"]
                # VIP + 2 NAT addresses + the standby load balancer's own public address
                + 4 * h * p["public_ipv4_hour"]
                + DEFAULT_IMAGE_GIB * p["s3_standard_gb_month"]
                # Harbor secrets, image bucket, database, cache, and the LB pair's real-server list
                + 5 * p["kms_key_month"] + 2 * p["secretsmanager_secret_month"])
    assert estimate(default_docs["active-active"], "active-active", prices).total == round(expected, 2)


def test_each_standalone_harbor_stores_its_own_copy_of_the_images(default_docs, prices):
    shared = estimate(default_docs["active-active"], "active-active", prices, image_gib=1000).by_kind()
    replicated = estimate(default_docs["master-slaves"], "master-slaves", prices, image_gib=1000).by_kind()
    assert shared["aws_s3_bucket"] == round(1000 * prices["s3_standard_gb_month"], 2)
    # master + 1 replica; the replication carrier bucket holds only a few KB.
    assert replicated["aws_s3_bucket"] == round(2 * 1000 * prices["s3_standard_gb_month"], 2)


def test_unknown_types_classes_and_regions_are_named_not_guessed(default_docs, prices):
    doc = json.loads(json.dumps(default_docs["active-active"]))
    instance = next(iter(doc["resource"]["aws_instance"].values()))
    instance["instance_type"] = "x9z.huge"
    doc["resource"]["aws_lambda_function"] = {"f": {}}
    doc["provider"]["aws"].append({"alias": "far", "region": "ap-south-2"})
    doc["resource"]["aws_kms_key"]["far"] = {"provider": "aws.far"}
    result = estimate(doc, "active-active", prices)
    why = dict(result.unpriced)
    assert "x9z.huge is not in the price table" in " ".join(why.values())
    assert why["aws_lambda_function.f"] == "no price rule for resource type aws_lambda_function"
    assert why["aws_kms_key.far"].startswith("region ap-south-2 is not in the price table")
    assert "NOT PRICED" in result.text() and "x9z.huge" in result.text()
    assert result.as_json()["complete"] is False


def test_readme_comparison_table_is_the_commands_output(default_docs, prices):
    estimates = {name: estimate(doc, name, prices) for name, doc in default_docs.items()}
    table = comparison_table(default_docs, estimates)
    assert table in (PROJECT / "README.md").read_text(), \
        "README's topology table is stale: paste 'harbor-ha cost --defaults --compare'"
    for name in STACK_NAMES:
        assert f"| `{name}` |" in table and f"${estimates[name].total:,.0f}" in table


def test_cli_cost_json_names_the_price_tables_date_and_source(capsys):
    assert main(["cost", "active-standby", "--defaults", "--json"]) == 0
    [report] = json.loads(capsys.readouterr().out)
    assert report["stack"] == "active-standby" and report["complete"] and report["monthly_total"] > 0
    assert report["price_table"]["date"] == load_prices()["date"]
    assert report["price_table"]["sources"]["ec2"].startswith("https://")


def test_cli_names_a_bad_stack_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["cost", "active"])
    assert exit_.value.code == 2
    assert "stack = 'active': allowed is one of active-active" in capsys.readouterr().err
