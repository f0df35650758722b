"""The AWS provider of a harbor-ha stack, pointed at the chosen target.

``aws``: the standard credential chain (environment, profile, SSO, instance role).
``local``: the embedded emulator on loopback, with every service harbor-ha uses pointed at it, so that
no call of a local deployment can reach real AWS.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from harbor_ha.aws import AwsProvider, AwsProviderDefaultTags, AwsProviderEndpoints, Construct
from harbor_ha.settings import HarborHaSettings

# Every service whose resources or data sources harbor-ha synthesizes; tests check the list is complete.
LOCAL_SERVICES = ("ec2", "elasticache", "iam", "kms", "rds", "route53", "s3", "secretsmanager", "ssm", "sts")
LOCAL_ENDPOINT_ENV = "HARBOR_HA_LOCAL_ENDPOINT"
# Credentials the emulator accepts; they open nothing anywhere else.
LOCAL_ACCESS_KEY = "harbor-ha-local"


def state_dir(project_dir: str | os.PathLike | None = None) -> Path:
    """Where harbor-ha keeps Terraform state and the emulator's pid file: ``$HARBOR_HA_STATE_DIR`` or
    ``.harbor-ha`` in the project."""
    configured = os.environ.get("HARBOR_HA_STATE_DIR")
    return Path(configured) if configured else Path(project_dir or os.getcwd()) / ".harbor-ha"


def local_endpoint(project_dir: str | os.PathLike | None = None) -> str:
    """URL of the running local emulator: ``$HARBOR_HA_LOCAL_ENDPOINT``, else the one recorded when
    it was started (``harbor-ha local start`` or any ``up``)."""
    if os.environ.get(LOCAL_ENDPOINT_ENV):
        return os.environ[LOCAL_ENDPOINT_ENV]
    record = state_dir(project_dir) / "local" / "server.json"
    try:
        return json.loads(record.read_text())["endpoint"]
    except (OSError, ValueError, KeyError):
        raise LocalTargetNotRunning(
            "target 'local' needs the local AWS emulator, and none is running: start it with "
            "'pipenv run harbor-ha local start' (or deploy with 'pipenv run harbor-ha up STACK', which "
            "starts it), or set target to 'aws'") from None


class LocalTargetNotRunning(RuntimeError):
    """The local target was chosen but no emulator is known."""


def aws_provider(scope: Construct, settings: HarborHaSettings, *, region: str | None = None,
                 alias: str | None = None, endpoint: str | None = None) -> AwsProvider:
    """The provider for ``settings.target``; ``region``/``alias`` for a second region's provider."""
    region = region or settings.region
    common = dict(
        region=region,
        alias=alias,
        default_tags=[AwsProviderDefaultTags(tags={"harbor-ha:deployment": settings.name, **settings.tags})],
    )
    provider_id = f"aws-{alias}" if alias else "aws"
    if settings.target == "aws":
        return AwsProvider(scope, provider_id, **common)
    url = endpoint or local_endpoint()
    return AwsProvider(
        scope, provider_id, **common,
        access_key=LOCAL_ACCESS_KEY,
        secret_key=LOCAL_ACCESS_KEY,
        skip_credentials_validation=True,
        skip_requesting_account_id=True,
        skip_metadata_api_check="true",
        skip_region_validation=True,
        s3_use_path_style=True,
        # The emulator answers an unimplemented call with HTTP 500; do not retry it 25 times.
        max_retries=2,
        endpoints=[AwsProviderEndpoints(**{service: url for service in LOCAL_SERVICES})],
    )
