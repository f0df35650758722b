"""What every harbor-ha stack shares: validated settings, the provider for the chosen target, and a
state file per target and stack so that a local and an AWS deployment never share state."""

from __future__ import annotations

from harbor_ha.aws import AwsProvider, Construct, LocalBackend, TerraformOutput, TerraformStack
from harbor_ha.provider import aws_provider
from harbor_ha.settings import HarborHaSettings


class HarborHaStack(TerraformStack):
    """Base of the solution stacks. ``stack_name`` is the CLI name (``active-active`` ...)."""

    stack_name: str = ""

    def __init__(self, scope: Construct, id_: str, *, settings: HarborHaSettings,
                 local_endpoint: str | None = None) -> None:
        settings.check_for(self.stack_name or id_)
        super().__init__(scope, id_)
        self.settings = settings
        self._local_endpoint = local_endpoint
        # Relative to cdktf.out/stacks/<id>, where cdktf and harbor-ha run terraform: the project's .harbor-ha.
        LocalBackend(self, path=f"../../../.harbor-ha/state/{settings.target}/{id_}.tfstate")
        self.provider = aws_provider(self, settings, endpoint=local_endpoint)

    def regional_provider(self, region: str, alias: str) -> AwsProvider:
        """An aliased provider for a second region (master-master)."""
        return aws_provider(self, self.settings, region=region, alias=alias, endpoint=self._local_endpoint)

    def output(self, name: str, value, description: str, sensitive: bool = False) -> TerraformOutput:
        return TerraformOutput(self, name, value=value, description=description, sensitive=sensitive)
