"""``harbor-ha diagram``: every component resource of the synthesized stack is drawn (counted by resource address
in the SVG graphviz writes), the arrows follow the JSON, and the pictures in docs/ are the command's output."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

import pytest

from conftest import PROJECT, TEST_LOCAL_ENDPOINT, CdktfTesting, require_tool
from harbor_ha.diagram import (COMPONENT_TYPES, REPLICATION_COLOR, WIRING_TYPES, DiagramError, architecture, draw)
from harbor_ha.settings import STACK_NAMES, HarborHaSettings
from harbor_ha.stacks import stack_class

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"
DOCS = PROJECT / "docs" / "diagrams"
# Larger than the defaults, so that a count is not right by accident.
VARIANTS = {"active-active": {"harbor_count": 5}, "master-slaves": {"replica_count": 3},
            # A VPC the stack is given: its subnets are ids, not resources of the stack.
            "active-standby": {"vpc_id": "vpc-0123456789abcdef0",
                               "public_subnet_ids": ("subnet-0123456789abcdef0", "subnet-0123456789abcdef1"),
                               "private_subnet_ids": ("subnet-0123456789abcdef2", "subnet-0123456789abcdef3")}}
HARBORS = {"active-active": 5, "master-slaves": 4, "active-standby": 2}


@pytest.fixture(scope="module")
def variant_docs(app) -> dict[str, dict]:
    docs = {}
    for name, changes in VARIANTS.items():
        stack = stack_class(name)(app, f"diagram-{name}", settings=HarborHaSettings().replace(**changes),
                                  local_endpoint=TEST_LOCAL_ENDPOINT)
        docs[name] = json.loads(CdktfTesting.synth(stack))
    return docs


def drawn_addresses(svg: Path) -> Counter:
    """Resource addresses named by the tooltips of the SVG's nodes and clusters, as graphviz wrote them."""
    found: Counter = Counter()
    for group in ElementTree.parse(svg).iter(f"{SVG}g"):
        if group.get("class") not in ("node", "cluster"):
            continue
        for link in group.iter(f"{SVG}a"):
            found.update(line for line in (link.get(f"{XLINK}title") or "").split("\n") if line.startswith("aws_"))
            break
    return found


def edges(svg: Path) -> list[tuple[str, str, str]]:
    """(source, target, stroke colour) of each arrow in the SVG."""
    found = []
    for group in ElementTree.parse(svg).iter(f"{SVG}g"):
        if group.get("class") == "edge":
            source, target = group.find(f"{SVG}title").text.split("->")
            path = group.find(f".//{SVG}path")
            found.append((source, target, path.get("stroke")))
    return found


def components(doc: dict) -> Counter:
    return Counter(f"{kind}.{name}" for kind, items in doc["resource"].items() if kind in COMPONENT_TYPES
                   for name in items)


def check_every_component_drawn_once(doc: dict, name: str, out: Path) -> Path:
    require_tool("dot")
    _, files = draw(doc, name, out)
    svg = next(f for f in files if f.suffix == ".svg")
    drawn, expected = drawn_addresses(svg), components(doc)
    assert drawn == expected, f"missing: {sorted(expected - drawn)}; extra or twice: {sorted(drawn - expected)}"
    kinds = set(doc["resource"])
    assert kinds <= COMPONENT_TYPES | WIRING_TYPES
    return svg


@pytest.mark.parametrize("name", STACK_NAMES)
def test_every_component_of_the_default_stacks_is_drawn_once(default_docs, name, tmp_path):
    check_every_component_drawn_once(default_docs[name], name, tmp_path)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_component_is_drawn_once_at_other_sizes(variant_docs, name, tmp_path):
    svg = check_every_component_drawn_once(variant_docs[name], name, tmp_path)
    harbors = [a for a in drawn_addresses(svg) if a.startswith("aws_instance.")
               and variant_docs[name]["resource"]["aws_instance"][a.split(".", 1)[1]]["tags"].get("harbor-ha:role") == "harbor"]
    assert len(harbors) == HARBORS[name]


def test_harbors_in_a_given_vpc_still_reach_the_data_tier(variant_docs, tmp_path):
    require_tool("dot")
    doc = variant_docs["active-standby"]
    assert "aws_subnet" not in doc["resource"]
    _, files = draw(doc, "active-standby", tmp_path)
    arrows = {(s, t) for s, t, _ in edges(files[0])}
    data = [f"{kind}.{name}" for kind in ("aws_db_instance", "aws_elasticache_replication_group")
            for name in doc["resource"][kind]]
    for harbor in (f"aws_instance.{n}" for n in doc["resource"]["aws_instance"]):
        assert {(harbor, d) for d in data} <= arrows
    assert "${" not in files[0].read_text()  # no Terraform expression shown as a label


def test_replication_arrows_follow_the_boot_commands(default_docs, variant_docs, tmp_path):
    require_tool("dot")
    pushes = {}
    for name, doc in (("master-master", default_docs["master-master"]),
                      ("master-slaves", variant_docs["master-slaves"])):
        _, files = draw(doc, name, tmp_path)
        pushes[name] = [(s, t) for s, t, colour in edges(files[0]) if colour == REPLICATION_COLOR.lower()]
    instances = sorted(default_docs["master-master"]["resource"]["aws_instance"])
    a, b = (f"aws_instance.{i}" for i in instances)
    assert sorted(pushes["master-master"]) == sorted([(a, b), (b, a)])
    master = "aws_instance.master_hosts_harbor_7F67F4F6"
    assert len(pushes["master-slaves"]) == VARIANTS["master-slaves"]["replica_count"]
    assert {s for s, _ in pushes["master-slaves"]} == {master}


def test_the_vip_points_at_both_holders_and_the_load_balancers_at_every_harbor(variant_docs, tmp_path):
    require_tool("dot")
    doc = variant_docs["active-active"]
    _, files = draw(doc, "active-active", tmp_path)
    arrows = {(s, t) for s, t, _ in edges(files[0])}
    vip = next(f"aws_eip.{n}" for n, b in doc["resource"]["aws_eip"].items() if "harbor-ha:vip" in b.get("tags", {}))
    lbs = [f"aws_instance.{n}" for n, b in doc["resource"]["aws_instance"].items() if "harbor-ha:vip" in b["tags"]]
    harbors = [f"aws_instance.{n}" for n, b in doc["resource"]["aws_instance"].items() if n.startswith("harbor_")]
    assert len(lbs) == 2 and len(harbors) == 5
    assert {(vip, lb) for lb in lbs} <= arrows
    assert {(lb, h) for lb in lbs for h in harbors} <= arrows


def test_a_resource_type_without_a_drawing_rule_is_refused():
    doc = {"provider": {"aws": [{"region": "us-east-1"}]}, "resource": {"aws_lambda_function": {"f": {}}}}
    with pytest.raises(DiagramError, match="aws_lambda_function"):
        architecture(doc, "x")


@pytest.mark.parametrize("name", STACK_NAMES)
def test_docs_pictures_are_the_commands_current_output(default_docs, name, tmp_path):
    """The SVG and PNG bytes are compared as they are: both are reproducible with one graphviz release (the SVG
    embeds its icons and drops graphviz's version comment). Regenerate with ``harbor-ha diagram --defaults``."""
    require_tool("dot")
    _, files = draw(default_docs[name], name, tmp_path)
    for produced in files:
        committed = DOCS / produced.name
        assert committed.is_file(), f"{committed} is missing: run 'harbor-ha diagram --defaults'"
        assert produced.read_bytes() == committed.read_bytes(), \
            f"{committed} is stale: run 'harbor-ha diagram --defaults'"


def test_svg_is_self_contained(tmp_path, default_docs):
    require_tool("dot")
    _, files = draw(default_docs["active-standby"], "active-standby", tmp_path)
    text = files[0].read_text()
    assert not re.search(r'xlink:href="(?!data:|#)', text), "the SVG refers to a file outside itself"
    assert "<use " in text and "data:image/png;base64," in text


def test_readme_shows_each_topologys_picture():
    readme = (PROJECT / "README.md").read_text()
    for name in STACK_NAMES:
        assert f"](docs/diagrams/{name}.png)" in readme
