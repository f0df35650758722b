"""What a change of each setting does: one table in code, the README's copy of it, and refusals in one
line per setting before anything changes."""

from __future__ import annotations

import pytest

from harbor_ha.changes import (
    CHANGES, IN_PLACE, REFUSED, ROLLED, TOOLING, change_table, deployed_settings, record, recorded, refusals,
)
from harbor_ha.settings import SETTING_NAMES, HarborHaSettings

from conftest import PROJECT


def test_every_setting_says_what_a_change_does():
    assert set(CHANGES) == set(SETTING_NAMES)
    for name, change in CHANGES.items():
        assert change.effect in (IN_PLACE, ROLLED, REFUSED, TOOLING), name
        assert change.does, name
        assert bool(change.instead) == (change.effect == REFUSED), f"{name}: a refusal says what to do instead"


def test_readme_holds_the_generated_table():
    assert change_table() in (PROJECT / "README.md").read_text(), \
        "README's change table is stale: paste harbor_ha.changes.change_table()"


@pytest.fixture
def deployed():
    return deployed_settings(HarborHaSettings(harbor_version="2.15.1"))


def test_nothing_changed_or_an_allowed_change_is_not_refused(deployed):
    assert refusals("active-active", deployed, HarborHaSettings(harbor_version="2.15.1")) == []
    allowed = HarborHaSettings(harbor_version="2.15.2", harbor_count=3, harbor_instance_type="m6i.xlarge",
                               harbor_volume_gib=200, stacks=("active-active",))
    assert refusals("active-active", deployed, allowed) == []
    assert refusals("active-active", {}, HarborHaSettings(name="other")) == [], "nothing deployed: all free"


def test_a_downgrade_is_refused_in_one_line_naming_both_versions(deployed):
    (line,) = refusals("active-active", deployed, HarborHaSettings(harbor_version="2.14.4"))
    assert line.startswith('harbor_version = "2.14.4" (deployed: "2.15.1"): refused on the deployed active-active')
    assert "schema migrations only go forward" in line and "\n" not in line


@pytest.mark.parametrize("setting, value, reason", [
    ("vpc_cidr", "10.50.0.0/16", "the network and every fixed address are in it"),
    ("name", "other", "every resource is named for it"),
    ("harbor_volume_gib", 50, "EBS volumes cannot shrink"),
    ("db_allocated_storage_gib", 20, "RDS storage cannot shrink"),
    ("redis_engine_version", "6.2", "ElastiCache does not downgrade"),
])
def test_unsupported_changes_are_refused_with_what_to_do(deployed, setting, value, reason):
    (line,) = refusals("active-active", deployed, HarborHaSettings(harbor_version="2.15.1", **{setting: value}))
    assert line.startswith(f"{setting} = ") and reason in line


def test_a_new_release_is_refused_on_standalone_harbors(deployed):
    """Their database is on the instance: a replacement would lose projects and users."""
    (line,) = refusals("master-slaves", deployed, HarborHaSettings(harbor_version="2.15.2"))
    assert "keeps its database on the instance" in line


def test_a_setting_newer_than_the_recording_counts_from_its_default(deployed):
    """A deployment recorded before harbor-ha had ``ami_id`` was made with its default: setting it now is a
    change like any other (refused on a standalone stack), never silently ignored."""
    before_the_setting = {name: value for name, value in deployed.items() if name != "ami_id"}
    image = HarborHaSettings(harbor_version="2.15.1", ami_id="ami-0123456789abcdef0")
    (line,) = refusals("master-slaves", before_the_setting, image)
    assert line.startswith('ami_id = "ami-0123456789abcdef0" (deployed: ""): refused on the deployed master-slaves')
    assert refusals("master-slaves", before_the_setting, HarborHaSettings(harbor_version="2.15.1")) == []


def test_settings_are_recorded_beside_the_state(tmp_path):
    settings = HarborHaSettings(harbor_count=3)
    assert recorded(tmp_path, "local", "active-active") == {}
    record(tmp_path, "active-active", settings)
    assert (tmp_path / ".harbor-ha/state/local/active-active.settings.json").is_file()
    saved = recorded(tmp_path, "local", "active-active")
    assert saved["harbor_count"] == 3 and "stacks" not in saved and "target" not in saved
    assert refusals("active-active", saved, settings) == []
