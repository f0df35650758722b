"""A VM's user-data carries its programs in one compressed archive that the first boot command unpacks: GNU
tar (the command the node runs) must unpack it to the files, modes and owners the constructs asked for,
cloud-init's schema must accept the document, and the same files must give the same user-data."""

from __future__ import annotations

import subprocess

import yaml

from harbor_ha.cloud_init import BUNDLE_PATH, UNPACK_BUNDLE, CloudConfig, WriteFile, written_files
from harbor_ha.rules import TOKEN_MARK

from conftest import require_tool

SCRIPT = WriteFile("/usr/local/libexec/harbor-ha/step.sh", "#!/bin/bash\necho \"${HOME}\" 100%{x}\n", "0755")
UNIT = WriteFile("/etc/systemd/system/step.service", "[Service]\nExecStart=/usr/local/libexec/harbor-ha/step.sh\n")
SECRET_ADJACENT = WriteFile("/etc/harbor-ha/keys.conf", "path=/run/keys\n", "0600")
WITH_REFERENCE = WriteFile("/etc/harbor-ha/harbor.env", f"DB_HOST={TOKEN_MARK}[TOKEN.1]}}\n", "0600")
CONFIG = CloudConfig(files=(SCRIPT, UNIT, SECRET_ADJACENT, WITH_REFERENCE), commands=("systemctl start step",))


def test_files_without_references_travel_in_one_archive_that_the_first_command_unpacks():
    document = yaml.safe_load(CONFIG.render())
    assert [entry["path"] for entry in document["write_files"]] == [WITH_REFERENCE.path, BUNDLE_PATH]
    assert document["write_files"][0]["content"] == WITH_REFERENCE.content, "a reference travels plain"
    assert document["runcmd"] == [list(UNPACK_BUNDLE), "systemctl start step"]


def test_gnu_tar_unpacks_the_archive_to_the_files_and_modes_asked_for(tmp_path):
    require_tool("tar")
    archive = tmp_path / "node-files.tar.gz"
    archive.write_bytes(written_files_packed(CONFIG.render()))
    root = tmp_path / "root"
    root.mkdir()
    # The node's command with the sandbox's root instead of /.
    subprocess.run([*UNPACK_BUNDLE[:2], str(archive), "-C", str(root)], check=True)
    for file in (SCRIPT, UNIT, SECRET_ADJACENT):
        unpacked = root / file.path.lstrip("/")
        assert unpacked.read_text() == file.content
        assert unpacked.stat().st_mode & 0o7777 == int(file.permissions, 8), file.path
    listing = subprocess.run(["tar", "-tvzf", str(archive)], capture_output=True, text=True, check=True).stdout
    assert all(" root/root " in line for line in listing.splitlines()), listing
    assert written_files(CONFIG.render())[SCRIPT.path] == (SCRIPT.content.encode(), 0o755)


def test_the_same_files_give_the_same_user_data():
    assert CONFIG.render() == CloudConfig(files=tuple(reversed(CONFIG.files)), commands=CONFIG.commands).render()


def test_cloud_init_accepts_the_document(tmp_path):
    cloud_init = require_tool("cloud-init")
    (tmp_path / "user-data").write_text(CONFIG.render())
    result = subprocess.run([cloud_init, "schema", "--config-file", str(tmp_path / "user-data")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def written_files_packed(user_data: str) -> bytes:
    """The archive's bytes, as cloud-init writes them (base64-decoded, mode 0600)."""
    (entry,) = [e for e in yaml.safe_load(user_data)["write_files"] if e["path"] == BUNDLE_PATH]
    assert entry["encoding"] == "b64" and entry["permissions"] == "0600"
    archive, mode = written_files(user_data, unpack=False)[BUNDLE_PATH]
    assert mode == 0o600
    return archive
