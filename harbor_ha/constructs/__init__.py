"""harbor-ha's public constructs, their props and the protocols their props name, importable from one place:
``from harbor_ha.constructs import HarborFleet, HarborFleetProps``.

Each name is loaded from its module on first use (PEP 562), so this package costs nothing until a construct
is asked for, and the modules stay importable on their own (``harbor_ha.constructs.harbor_fleet``).
docs/constructs.md documents every name; a test keeps this table and that reference in step.
"""

from __future__ import annotations

from importlib import import_module

_MODULES = {
    "cache": ("HarborCache", "HarborCacheProps"),
    "database": ("HarborDatabase", "HarborDatabaseProps"),
    "harbor_fleet": ("HarborFleet", "HarborFleetProps"),
    "harbor_host": ("HarborHosts",),
    "harbor_node": ("StandaloneHarborNode", "StandaloneHarborNodeProps"),
    "lb_pair": ("LoadBalancerPair", "LoadBalancerPairProps"),
    "log_bucket": ("LogBucket", "LogBucketProps"),
    "network": ("HarborNetwork", "HarborNetworkProps"),
    "region": ("RegionScope",),
    "replication": ("HarborReplication", "HarborReplicationProps"),
    "shared_data": ("SharedData", "SharedDataProps"),
    "static_ips": ("StaticIps", "StaticIpsProps"),
    "storage": ("RegistryStorage", "RegistryStorageProps"),
    "zone_query_log": ("ZoneQueryLog", "ZoneQueryLogProps"),
    "interfaces": ("Connectable", "AccessLogSink", "Network", "AdmitsPeers", "Database", "Cache", "ImageStorage",
                   "LoadBalancingTargets"),
}
_MODULE_OF = {name: module for module, names in _MODULES.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
