"""Terraform CLI configuration: the provider mirror for air-gapped installs, and the environment that
every terraform run of harbor-ha gets.

When a mirror is configured (setting ``provider_mirror``) or found in a usual place, harbor-ha writes a CLI
config that installs every ``registry.terraform.io`` provider from it and from nowhere else, so
``terraform init`` never contacts a registry. Without a mirror, terraform uses the public registry as usual.
For ``cdktf deploy`` outside harbor-ha's own commands: ``eval "$(pipenv run harbor-ha env)"`` first.
"""

from __future__ import annotations

import os
from pathlib import Path

from harbor_ha.target import state_dir

# Where air-gapped images and packagers put provider mirrors; the first holding the pinned provider wins.
MIRROR_CANDIDATES = (
    "/opt/tf-plugins",
    "/usr/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
)
# The provider version harbor_ha.aws binds; kept here too so this module starts no jsii runtime.
AWS_PROVIDER_VERSION = "5.100.0"
AWS_PROVIDER_PATH = Path("registry.terraform.io/hashicorp/aws") / AWS_PROVIDER_VERSION


def find_mirror(configured: str = "") -> Path | None:
    """The mirror to use: ``configured`` if given, else the first candidate holding hashicorp/aws."""
    if configured:
        return Path(configured).expanduser().resolve()
    for candidate in MIRROR_CANDIDATES:
        path = Path(candidate).expanduser()
        if (path / AWS_PROVIDER_PATH).is_dir():
            return path.resolve()
    return None


def cli_config_text(mirror: Path) -> str:
    return (
        "# Written by harbor-ha: providers come from the filesystem mirror only, never from a registry.\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror}"\n'
        '    include = ["registry.terraform.io/*/*"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["registry.terraform.io/*/*"]\n'
        "  }\n"
        "}\n"
    )


# Terraform's and cdktf's calls home: update and telemetry checks (checkpoint-api.hashicorp.com) and cdktf's
# npm version check. Offline they end in a getaddrinfo error; nowhere are they needed to deploy.
UPDATE_CHECKS_OFF = {"CHECKPOINT_DISABLE": "1", "DISABLE_VERSION_CHECK": "1"}


def terraform_env(provider_mirror: str = "", project_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """``os.environ`` plus what terraform needs here: the mirror's CLI config (if any) and a shared
    plugin cache so that each stack does not copy the provider again."""
    env = {**UPDATE_CHECKS_OFF, **os.environ}
    env.setdefault("TF_IN_AUTOMATION", "1")
    root = state_dir(project_dir)
    mirror = find_mirror(provider_mirror)
    if mirror is not None:
        config = root / "terraformrc"
        config.parent.mkdir(parents=True, exist_ok=True)
        text = cli_config_text(mirror)
        if not config.is_file() or config.read_text() != text:
            config.write_text(text)
        env["TF_CLI_CONFIG_FILE"] = str(config.resolve())
    elif env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).is_file():
        # A config file that does not exist only makes terraform warn; without a mirror, use the defaults.
        del env["TF_CLI_CONFIG_FILE"]
    cache = root / "plugin-cache"
    cache.mkdir(parents=True, exist_ok=True)
    env["TF_PLUGIN_CACHE_DIR"] = str(cache.resolve())
    return env
