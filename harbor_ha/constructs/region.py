"""A scope whose resources live in another region: every resource and data source created under it uses the
given (aliased) provider, so the constructs need no provider argument of their own."""

from __future__ import annotations

import jsii

from harbor_ha.aws import Aspects, AwsProvider, Construct, IAspect, TerraformDataSource, TerraformResource


@jsii.implements(IAspect)
class _UseProvider:
    def __init__(self, provider: AwsProvider) -> None:
        self._provider = provider

    def visit(self, node) -> None:
        if isinstance(node, (TerraformResource, TerraformDataSource)) and node.provider is None:
            node.provider = self._provider


class RegionScope(Construct):
    """Constructs created with this scope as parent are deployed through ``provider`` (its region)."""

    def __init__(self, scope: Construct, id_: str, *, provider: AwsProvider) -> None:
        super().__init__(scope, id_)
        self.provider = provider
        self.region = provider.region
        Aspects.of(self).add(_UseProvider(provider))
