"""The data tier that every Harbor server of active-active and active-standby shares: PostgreSQL (RDS),
Redis (ElastiCache) and the S3 image bucket. ``HarborFleet`` wires itself to the three."""

from __future__ import annotations

from dataclasses import dataclass

from harbor_ha.aws import Construct
from harbor_ha.constructs.cache import HarborCache, HarborCacheProps
from harbor_ha.constructs.database import HarborDatabase, HarborDatabaseProps
from harbor_ha.constructs.storage import RegistryStorage, RegistryStorageProps


@dataclass(frozen=True)
class SharedDataProps:
    """The props of the three shared stores."""

    storage: RegistryStorageProps
    database: HarborDatabaseProps
    cache: HarborCacheProps


class SharedData(Construct):
    """Attributes: ``storage`` (RegistryStorage), ``database`` (HarborDatabase), ``cache`` (HarborCache)."""

    def __init__(self, scope: Construct, id_: str, *, props: SharedDataProps) -> None:
        super().__init__(scope, id_)
        self.storage = RegistryStorage(self, "storage", props=props.storage)
        self.database = HarborDatabase(self, "database", props=props.database)
        self.cache = HarborCache(self, "cache", props=props.cache)
