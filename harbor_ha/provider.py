"""The AWS provider of a harbor-ha stack, pointed at the chosen target.

``aws``: the standard credential chain (environment, profile, SSO, instance role).
``local``: the embedded emulator on loopback, with every service harbor-ha uses pointed at it, so that
no call of a local deployment can reach real AWS.
"""

from __future__ import annotations

from harbor_ha.aws import AwsProvider, AwsProviderDefaultTags, AwsProviderEndpoints, Construct
from harbor_ha.settings import HarborHaSettings
from harbor_ha.local import emulator
from harbor_ha.rules import DEPLOYMENT_TAG_KEY, STACK_TAG_KEY
from harbor_ha.target import LOCAL_ACCESS_KEY

# Every service whose resources or data sources harbor-ha synthesizes; tests check the list is complete.
LOCAL_SERVICES = ("cloudwatchlogs", "ec2", "elasticache", "iam", "kms", "rds", "route53", "s3", "secretsmanager", "ssm",
                  "sts")


def deployment_tags(settings: HarborHaSettings) -> dict[str, str]:
    """The tags on every resource: the deployment, the stack (a stack's own settings) and the user's tags. The
    target is inventoried by them (harbor_ha.inventory)."""
    stack = {STACK_TAG_KEY: settings.stack} if settings.stack else {}
    return {DEPLOYMENT_TAG_KEY: settings.name, **stack, **settings.tags}


def aws_provider(scope: Construct, settings: HarborHaSettings, *, region: str | None = None,
                 alias: str | None = None, endpoint: str | None = None) -> AwsProvider:
    """The provider for ``settings.target``; ``region``/``alias`` for a second region's provider."""
    region = region or settings.region
    common = dict(
        region=region,
        alias=alias,
        default_tags=[AwsProviderDefaultTags(tags=deployment_tags(settings))],
    )
    provider_id = f"aws-{alias}" if alias else "aws"
    if settings.target == "aws":
        return AwsProvider(scope, provider_id, **common)
    url = endpoint or emulator.endpoint(start_if_needed=False)
    return AwsProvider(
        scope, provider_id, **common,
        access_key=LOCAL_ACCESS_KEY,
        secret_key=LOCAL_ACCESS_KEY,
        skip_credentials_validation=True,
        # Requested from the emulator's STS: without an account the provider reads rules that reference other
        # groups back as "<account>/sg-..." and plans to change them forever.
        skip_requesting_account_id=False,
        skip_metadata_api_check="true",
        skip_region_validation=True,
        s3_use_path_style=True,
        # The AWS SDK for Go now and then reads an emulator answer from a connection it has already closed
        # ("use of closed network connection", aws/aws-sdk-go-v2#1825) and retries; the emulator answers
        # retries as it answered the first attempt (harbor_ha/local/server.py), so a few are safe. Not the
        # default 25: an unimplemented call answers HTTP 500 every time.
        max_retries=5,
        endpoints=[AwsProviderEndpoints(**{service: url for service in LOCAL_SERVICES})],
    )
