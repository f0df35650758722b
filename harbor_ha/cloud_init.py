"""cloud-config documents for harbor-ha's VMs, built from parts that several constructs share.

EC2 allows 16 KiB of user-data. Every file without a Terraform reference travels in one gzip-compressed tar
archive (``BUNDLE_PATH``, written by ``write_files`` as base64) that the first command unpacks: one archive
compresses the programs of a node far better than one gzip stream per file, and its base64 and YAML overhead
comes once. The archive is built deterministically (sorted, fixed times and owners), so the same input gives
the same user-data and no instance is replaced without a reason. A file that holds a Terraform reference
travels plain, for Terraform to fill in; Terraform would read a literal ``${`` or ``%{`` (shell parameter
expansion) as its own template syntax, so such a file cannot also hold a reference.
"""

from __future__ import annotations

import base64
import gzip
import io
import re
import tarfile
from dataclasses import dataclass, field

import yaml

from harbor_ha.rules import TOKEN_MARK

# libyaml's emitter where PyYAML was built with it: several times faster than the pure-Python one, which
# made synth time grow with every Harbor server; the text is the same.
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

USER_DATA_LIMIT = 16 * 1024
BUNDLE_PATH = "/var/lib/harbor-ha/node-files.tar.gz"
UNPACK_BUNDLE = ("tar", "-xzf", BUNDLE_PATH, "-C", "/")


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

    @property
    def has_reference(self) -> bool:
        if not has_reference(self.content):
            return False
        if "%{" in self.content or "${" in self.content.replace(TOKEN_MARK, ""):
            raise ValueError(f"{self.path}: a file holding Terraform references cannot also hold a literal "
                             "'${' or '%{' (Terraform would read it as a template)")
        return True

    def to_cloud_config(self) -> dict:
        return {"path": self.path, "owner": "root:root", "permissions": self.permissions, "content": self.content}


def bundle(files: list[WriteFile]) -> bytes:
    """``files`` as a gzip-compressed tar archive that unpacks at their paths, owned by root, with their modes;
    the same files give the same bytes."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for file in sorted(files, key=lambda f: f.path):
            data = file.content.encode()
            entry = tarfile.TarInfo(file.path.lstrip("/"))
            entry.size, entry.mode, entry.uname, entry.gname = len(data), int(file.permissions, 8), "root", "root"
            tar.addfile(entry, io.BytesIO(data))
    return gzip.compress(archive.getvalue(), compresslevel=9, mtime=0)


def written_files(user_data: str, unpack: bool = True) -> dict[str, tuple[bytes, int]]:
    """Path -> (content, mode) of every file a rendered user-data leaves on the node: what ``write_files``
    writes and, with ``unpack`` (default True), the archive's files as the node's first command unpacks them
    instead of the archive itself."""
    files = {}
    for entry in yaml.safe_load(user_data).get("write_files", []):
        data = entry["content"].encode() if entry.get("encoding") != "b64" else base64.b64decode(entry["content"])
        files[entry["path"]] = (data, int(entry.get("permissions", "0644"), 8))
    if unpack and BUNDLE_PATH in files:
        with tarfile.open(fileobj=io.BytesIO(files.pop(BUNDLE_PATH)[0]), mode="r:gz") as tar:
            for member in tar.getmembers():
                files["/" + member.name] = (tar.extractfile(member).read(), member.mode)
    return files


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
        plain = [f for f in self.files if f.has_reference]
        packed = [f for f in self.files if not f.has_reference]
        commands = ((UNPACK_BUNDLE,) if packed else ()) + self.commands
        if packed:
            plain.append(WriteFile(BUNDLE_PATH, base64.b64encode(bundle(packed)).decode(), "0600"))
        if plain:
            document["write_files"] = [f.to_cloud_config() for f in plain]
            if packed:
                document["write_files"][-1]["encoding"] = "b64"
        if commands:
            document["runcmd"] = [list(c) if isinstance(c, tuple) else c for c in commands]
        document.update(self.extra)
        text = "#cloud-config\n" + yaml.dump(document, Dumper=SAFE_DUMPER, sort_keys=False, width=1_000_000)
        if len(text.encode()) > USER_DATA_LIMIT:
            raise ValueError(f"user-data is {len(text.encode())} bytes; EC2 allows {USER_DATA_LIMIT}: keep Terraform "
                             "references out of large files (those travel in the compressed archive)")
        return text
