"""The construct props of a ``HarborHaSettings`` deployment: where settings become props, so that the
dependency runs settings -> stacks -> constructs and no construct knows the settings. Each setting's default
and rule live in ``harbor_ha.settings`` / ``harbor_ha.rules``; each mapping is written here once."""

from __future__ import annotations

from typing import Sequence

from harbor_ha.constructs.cache import HarborCacheProps
from harbor_ha.constructs.database import HarborDatabaseProps
from harbor_ha.constructs.harbor_fleet import HarborFleetProps
from harbor_ha.constructs.harbor_node import StandaloneHarborNodeProps
from harbor_ha.constructs.interfaces import AccessLogSink, Cache, Database, ImageStorage, Network
from harbor_ha.constructs.network import HarborNetworkProps
from harbor_ha.constructs.shared_data import SharedDataProps
from harbor_ha.constructs.static_ips import PlacedAddress
from harbor_ha.constructs.storage import RegistryStorageProps
from harbor_ha.settings import SELF_SIGNED, HarborHaSettings


def network_props(settings: HarborHaSettings) -> HarborNetworkProps:
    """The network that ``settings`` describe: an existing VPC (``vpc_id``) or a new one."""
    logs = dict(force_destroy_logs=not settings.effective_deletion_protection)
    if settings.vpc_id:
        return HarborNetworkProps(name=settings.resource_prefix, vpc_id=settings.vpc_id,
                                  public_subnet_ids=tuple(settings.public_subnet_ids),
                                  private_subnet_ids=tuple(settings.private_subnet_ids), **logs)
    return HarborNetworkProps(name=settings.resource_prefix, availability_zones=tuple(settings.zones),
                              vpc_cidr=settings.vpc_cidr, **logs)


def storage_props(settings: HarborHaSettings, access_logs: AccessLogSink | None = None) -> RegistryStorageProps:
    """The image bucket; destroyable where deletion protection is off."""
    return RegistryStorageProps(name=settings.resource_prefix, force_destroy=not settings.effective_deletion_protection,
                                access_logs=access_logs)


def database_props(settings: HarborHaSettings, network: Network) -> HarborDatabaseProps:
    """The database in the private subnets of ``network``. Without deletion protection also no final snapshot."""
    return HarborDatabaseProps(
        name=settings.resource_prefix, vpc_id=network.vpc_id, subnet_ids=tuple(network.private_subnet_ids),
        engine=settings.db_engine, harbor_version=settings.harbor_version,
        engine_version=settings.effective_db_engine_version, instance_class=settings.db_instance_class,
        allocated_storage_gib=settings.db_allocated_storage_gib, backup_retention_days=settings.db_backup_retention_days,
        deletion_protection=settings.effective_deletion_protection,
        final_snapshot=settings.effective_deletion_protection)


def cache_props(settings: HarborHaSettings, network: Network) -> HarborCacheProps:
    """The Redis in the private subnets of ``network``."""
    return HarborCacheProps(name=settings.resource_prefix, vpc_id=network.vpc_id,
                            subnet_ids=tuple(network.private_subnet_ids), node_type=settings.cache_node_type,
                            node_count=settings.cache_node_count, engine_version=settings.redis_engine_version)


def shared_data_props(settings: HarborHaSettings, network: Network) -> SharedDataProps:
    """The three shared stores in the private subnets of ``network``, the bucket logging to its log bucket."""
    return SharedDataProps(storage=storage_props(settings, access_logs=network.log_bucket),
                           database=database_props(settings, network), cache=cache_props(settings, network))


def fleet_props(settings: HarborHaSettings, *, network: Network, storage: ImageStorage, database: Database,
                cache: Cache, hostname: str, addresses: Sequence[PlacedAddress] = (), **overrides) -> HarborFleetProps:
    """The Harbor servers on the shared stores; ``overrides`` set any other prop."""
    values = dict(network=network, storage=storage, database=database, cache=cache, hostname=hostname,
                  addresses=tuple(addresses), name=settings.resource_prefix,
                  count=len(addresses) or settings.harbor_count,
                  instance_type=settings.harbor_instance_type, harbor_version=settings.harbor_version,
                  ssh_cidrs=tuple(settings.ssh_cidrs), volume_gib=settings.harbor_volume_gib,
                  tls_certificate=settings.tls_certificate, ami_id=settings.ami_id)
    return HarborFleetProps(**{**values, **overrides})


def standalone_props(settings: HarborHaSettings, network: Network, name: str, zone_index: int, *,
                     own_name: str = "", other_names: tuple[str, ...] = ()) -> StandaloneHarborNodeProps:
    """A public standalone Harbor of a replication topology. ``own_name`` is the DNS name of this node, Harbor's
    own name when the user gave a ``hostname`` (clients then reach the nodes by name); without one they are
    reached at their Elastic IPs, and a self-signed certificate still carries the names (``own_name``,
    ``other_names``) for when the zone is delegated."""
    return StandaloneHarborNodeProps(
        network=network, name=name, zone_index=zone_index % len(network.availability_zones), public=True,
        hostname=own_name if settings.hostname else "",
        certificate_names=tuple(name for name in (own_name, *other_names) if name),
        storage=settings.node_storage, instance_type=settings.harbor_instance_type,
        harbor_version=settings.harbor_version, volume_gib=settings.harbor_volume_gib,
        ssh_cidrs=tuple(settings.ssh_cidrs), tls_certificate=settings.tls_certificate, ami_id=settings.ami_id,
        force_destroy=not settings.effective_deletion_protection)


def replication_tls_trust(settings: HarborHaSettings) -> str:
    """Self-signed nodes trust each other's pinned certificates; a ``tls_certificate`` of the user's names a
    host while replication reaches the nodes at their addresses, so it cannot be verified there."""
    return "pinned" if settings.tls_certificate == SELF_SIGNED else "none"
