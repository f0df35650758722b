"""Scoped checkov suppressions: a check that does not apply to one resource by design is recorded in that
resource's own Terraform JSON comment, ``"//": {"checkov:skip=<check id>": "<reason>"}``, beside the
resource it concerns, never for a whole run.

checkov 3.3 reads no skip comments in Terraform JSON (its terraform_json runner passes no skipped checks to
its resource checks), so ``tests/test_checkov.py`` applies them: a failed check is accepted only on a
resource whose comment names that check, and a comment that suppresses nothing fails the test. The README
lists every suppression (the same test keeps the list in step)."""

from __future__ import annotations

from harbor_ha.aws import TerraformResource

SKIP_PREFIX = "checkov:skip="


def skip_check(resource: TerraformResource, check_id: str, reason: str) -> None:
    """Record that checkov's ``check_id`` does not apply to ``resource``, and why (one sentence)."""
    if "." in check_id or not reason.strip():
        raise ValueError(f"check_id = {check_id!r}, reason = {reason!r}: allowed is a checkov id and a reason")
    resource.add_override(f"//.{SKIP_PREFIX}{check_id}", reason)


def skips_of(resource_json: dict) -> dict[str, str]:
    """The suppressions recorded in one synthesized resource: check id -> reason."""
    comment = resource_json.get("//", {})
    return {key[len(SKIP_PREFIX):]: value for key, value in comment.items() if key.startswith(SKIP_PREFIX)} \
        if isinstance(comment, dict) else {}
