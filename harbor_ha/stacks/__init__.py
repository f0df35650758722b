"""One stack per Harbor HA topology, by CLI name. Imported lazily: building one stack loads only its
own modules."""

from __future__ import annotations

import importlib

STACK_CLASSES = {
    "active-active": "harbor_ha.stacks.active_active:ActiveActiveStack",
    "active-standby": "harbor_ha.stacks.active_standby:ActiveStandbyStack",
    "master-slaves": "harbor_ha.stacks.master_slaves:MasterSlavesStack",
    "master-master": "harbor_ha.stacks.master_master:MasterMasterStack",
}


def stack_class(name: str):
    """The stack class registered as ``name`` (one of ``STACK_CLASSES``)."""
    module_name, class_name = STACK_CLASSES[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)
