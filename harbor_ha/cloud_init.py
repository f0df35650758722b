"""cloud-config documents for harbor-ha's VMs, built from parts that several constructs share.

Large files travel gzip+base64 encoded (cloud-init's ``encoding: gz+b64``) so user-data stays under EC2's
16 KiB limit; they are compressed deterministically, so the same input gives the same user-data and no
instance is replaced without a reason. Terraform references (tokens) may appear in any string; a file that
holds one travels plain. Terraform would read a literal ``${`` or ``%{`` (shell parameter expansion) as its
own template syntax, so files holding those travel compressed, whatever their size.
"""

from __future__ import annotations

import base64
import gzip
import re
from dataclasses import dataclass, field

import yaml

from harbor_ha.rules import TOKEN_MARK

# libyaml's emitter where PyYAML was built with it: several times faster than the pure-Python one, which
# made synth time grow with every Harbor server; the text is the same.
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

USER_DATA_LIMIT = 16 * 1024
# Files larger than this are compressed.
COMPRESS_OVER = 1024


# Whole-line comments, except the interpreter line and shellcheck directives.
_COMMENT_LINE_RE = re.compile(r"^\s*#(?!!|\s*shellcheck)")


def without_comment_lines(script: str) -> str:
    """A shell script without its comment lines: they are for readers of this repository, and user-data
    has 16 KiB for everything (no here-document of the scripts has lines starting with '#')."""
    return "".join(line for line in script.splitlines(keepends=True) if not _COMMENT_LINE_RE.match(line))


def has_reference(text: str) -> bool:
    """Whether ``text`` holds a Terraform reference (an unresolved cdktf token)."""
    return TOKEN_MARK in text


@dataclass(frozen=True)
class WriteFile:
    """One file that cloud-init writes before running commands."""

    path: str
    content: str
    permissions: str = "0644"
    """Octal mode. Default ``0644``; scripts use ``0755``, anything secret-adjacent ``0600``."""
    owner: str = "root:root"
    compress: bool = False
    """Compress whatever the size (default False: only files over ``COMPRESS_OVER`` bytes), for a file of a
    node whose user-data is near EC2's limit. Ignored for a file holding a Terraform reference."""

    def to_cloud_config(self) -> dict:
        entry = {"path": self.path, "owner": self.owner, "permissions": self.permissions}
        has_token = has_reference(self.content)
        template_syntax = "%{" in self.content or "${" in self.content.replace(TOKEN_MARK, "")
        if has_token and template_syntax:
            raise ValueError(f"{self.path}: a file holding Terraform references cannot also hold a literal "
                             "'${' or '%{' (Terraform would read it as a template)")
        if not has_token and (self.compress or len(self.content) > COMPRESS_OVER or template_syntax):
            packed = gzip.compress(self.content.encode(), compresslevel=9, mtime=0)
            entry.update(encoding="gz+b64", content=base64.b64encode(packed).decode())
        else:
            entry["content"] = self.content
        return entry


@dataclass(frozen=True)
class CloudConfig:
    """A ``#cloud-config`` document: packages, files, then commands, in that order."""

    packages: tuple[str, ...] = ()
    files: tuple[WriteFile, ...] = ()
    commands: tuple[str | tuple[str, ...], ...] = ()
    """Each a shell line (str) or an argv (tuple), run once at first boot in order."""
    extra: dict = field(default_factory=dict)
    """Other top-level cloud-config keys (e.g. ``bootcmd``)."""

    def merge(self, other: "CloudConfig") -> "CloudConfig":
        return CloudConfig(
            packages=tuple(dict.fromkeys(self.packages + other.packages)),
            # A file both parts write (the same program) is written once.
            files=self.files + tuple(f for f in other.files if f not in self.files),
            commands=self.commands + other.commands,
            extra={**self.extra, **other.extra},
        )

    def render(self) -> str:
        document: dict = {}
        if self.packages:
            document["package_update"] = True
            document["packages"] = list(self.packages)
        if self.files:
            document["write_files"] = [f.to_cloud_config() for f in self.files]
        if self.commands:
            document["runcmd"] = [list(c) if isinstance(c, tuple) else c for c in self.commands]
        document.update(self.extra)
        text = "#cloud-config\n" + yaml.dump(document, Dumper=SAFE_DUMPER, sort_keys=False, width=1_000_000)
        if len(text.encode()) > USER_DATA_LIMIT:
            raise ValueError(f"user-data is {len(text.encode())} bytes; EC2 allows {USER_DATA_LIMIT}: move large "
                             "files into compressed parts (no Terraform references inside them)")
        return text
