"""What every harbor-ha stack shares: validated settings, the provider for the chosen target, and a
state file per target and stack so that a local and an AWS deployment never share state."""

from __future__ import annotations

from harbor_ha.aws import AwsProvider, Construct, Fn, LocalBackend, Route53Zone, TerraformOutput, TerraformStack
from harbor_ha.constructs.checkov import skip_check
from harbor_ha.constructs.region import RegionScope
from harbor_ha.constructs.zone_query_log import QUERY_LOG_REGION, ZoneQueryLog, ZoneQueryLogProps
from harbor_ha.provider import aws_provider
from harbor_ha.settings import STACK_NAMES, HarborHaSettings
from harbor_ha.target import TERRAFORM_STATE


class HarborHaStack(TerraformStack):
    """Base of the solution stacks. ``stack_name`` is the CLI name (``active-active`` ...). ``self.settings``
    are the settings narrowed to this stack: its AWS names start with ``settings.resource_prefix`` and its
    resources carry the ``harbor-ha:stack`` tag."""

    stack_name: str = ""

    def __init__(self, scope: Construct, id_: str, *, settings: HarborHaSettings,
                 local_endpoint: str | None = None) -> None:
        settings.check_for(self.stack_name or id_)
        super().__init__(scope, id_)
        stack = self.stack_name or id_
        self.settings = settings.replace(stacks=(stack,)) if stack in STACK_NAMES else settings
        self._local_endpoint = local_endpoint
        # Relative to cdktf.out/stacks/<id>, where cdktf and harbor-ha run terraform: the project's .harbor-ha.
        LocalBackend(self, path=f"../../../{TERRAFORM_STATE.as_posix()}/{settings.target}/{id_}.tfstate")
        self.provider = aws_provider(self, self.settings, endpoint=local_endpoint)

    def regional_provider(self, region: str, alias: str) -> AwsProvider:
        """An aliased provider for a second region (master-master)."""
        return aws_provider(self, self.settings, region=region, alias=alias, endpoint=self._local_endpoint)

    def log_zone_queries(self, zone: Route53Zone, zone_name: str) -> None:
        """DNS query logging of a public hosted zone, in us-east-1 where Route 53 writes query logs."""
        skip_check(zone, "CKV2_AWS_38", "DNSSEC signing protects only once the parent zone publishes the zone's "
                   "DS record, a step of the delegation outside harbor-ha (and the default zone under .internal "
                   "has no parent); sign it when you delegate it")
        scope = self if self.settings.region == QUERY_LOG_REGION else RegionScope(
            self, "dns-logs", provider=self.regional_provider(QUERY_LOG_REGION, "dns-logs"))
        ZoneQueryLog(scope, "query-log", props=ZoneQueryLogProps(name=self.settings.resource_prefix, zone_id=zone.zone_id,
                                                                 zone_name=zone_name))

    def output(self, name: str, value, description: str, sensitive: bool = False) -> TerraformOutput:
        return TerraformOutput(self, name, value=value, description=description, sensitive=sensitive)

    def output_vip_deployment(self, *, ips, fleet, data, vip_holder: str) -> None:
        """The outputs of a VIP topology on the shared data tier (active-active, active-standby)."""
        hostname = self.settings.hostname
        url = f"https://{hostname}" if hostname else Fn.join("", ["https://", ips.vip_address])
        self.output("harbor_url", url, "Where clients reach Harbor (the VIP)")
        self.output("vip_address", ips.vip_address, f"The virtual IP: an Elastic IP held by the MASTER {vip_holder}")
        self.output("vip_allocation_id", ips.vip_allocation_id, "Allocation id of the VIP Elastic IP")
        self.output("harbor_private_ips", fleet.private_ips, "Fixed private addresses of the Harbor servers")
        self.output("harbor_instance_ids", fleet.instance_ids, "EC2 instances of the Harbor servers")
        self.output("db_endpoint", data.database.db_endpoint, "PostgreSQL endpoint (host:port), TLS only")
        self.output("redis_endpoint", data.cache.redis_endpoint, "Redis primary endpoint, TLS only")
        self.output("bucket", data.storage.bucket_name, "S3 bucket holding the image layers")
        self.output("db_master_secret_arn", data.database.master_user_secret_arn,
                    "Secrets Manager secret of the database master user (managed by RDS)")
        self.output("redis_auth_secret_arn", data.cache.auth_token_secret_arn,
                    "Secrets Manager secret of the Redis AUTH token")
        self.output("harbor_secrets_arn", fleet.shared_secrets_arn,
                    "Secrets Manager secret of Harbor's shared keys (created by the first node at boot)")
        self.output("admin_secret_arn", fleet.admin_secret_arn, "Secrets Manager secret of Harbor's admin password")
