"""Which Harbor releases harbor-ha's nodes install: the one rule that settings and constructs share.

A release is written as Harbor numbers it (``2.15.2``, ``2.15.0-rc1``); the boot scripts add the ``v`` of
Harbor's tags themselves (``.../v2.15.2/harbor-online-installer-v2.15.2.tgz``). The nodes' harbor.yml uses
``external_redis.tlsOptions`` (Redis over TLS), which Harbor has since 2.13.0, so older releases are refused.
Harbor supports only PostgreSQL since 1.6.0 (goharbor/harbor#4855): every release the nodes install does.
"""

from __future__ import annotations

import re

DEFAULT_HARBOR_VERSION = "2.15.2"
BOOT_SCRIPTS_SINCE = (2, 13, 0)
POSTGRES_SINCE = (1, 6, 0)
_RELEASE_RE = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})(-rc\d{1,2})?")
ALLOWED = "a Harbor release number X.Y.Z (or X.Y.Z-rcN) from 2.13.0 on, such as 2.15.2"


def parse_release(text: object) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` of a release number; None if ``text`` is not one."""
    match = _RELEASE_RE.fullmatch(text) if isinstance(text, str) else None
    return tuple(int(part) for part in match.groups()[:3]) if match else None  # type: ignore[return-value]


def release_problem(text: object) -> str | None:
    """What is allowed instead, if harbor-ha's nodes cannot install release ``text``; None if they can."""
    version = parse_release(text)
    if version is None:
        if isinstance(text, str) and text[:1] in ("v", "V") and parse_release(text[1:]):
            return f"{ALLOWED} (without the 'v' of Harbor's tags: {text[1:]})"
        return ALLOWED
    if version < BOOT_SCRIPTS_SINCE:
        return (f"{ALLOWED}: the nodes reach Redis over TLS, which Harbor supports since 2.13.0 (a legacy "
                "Harbor, such as one below 1.6.0 on MariaDB, you install yourself; HarborDatabase still makes "
                "its database)")
    return None


def minor_release(text: str) -> str:
    """``X.Y.0`` of a release: the ``_version`` key of that release's harbor.yml."""
    major, minor, _ = parse_release(text)  # type: ignore[misc]
    return f"{major}.{minor}.0"
