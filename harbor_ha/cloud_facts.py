"""What harbor-ha knows about AWS itself, in one table: regions and their zone letters, and the EC2
instance types it accepts with their architecture, the name Amazon Linux 2023 gives their first network
interface, and whether they can be EBS-optimized. A value not in the table is refused.

Source: the AWS documentation ("Regions and Zones"; "Amazon EC2 instance types": specifications, "EBS-
optimized instances", "Instances built on the Nitro System") and Amazon Linux 2023's predictable interface
names (``ens5`` on Nitro, ``eth0`` on Xen), as of 2026-12-01. Zone letters are what AWS maps for most
accounts; a zone an account does not have fails at apply (``aws ec2 describe-availability-zones`` lists an
account's own). Add a row here when AWS adds a region or a family.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE_DATE = "2026-12-01"

REGION_ZONES: dict[str, str] = {
    "us-east-1": "abcdef", "us-east-2": "abc", "us-west-1": "abc", "us-west-2": "abcd",
    "ca-central-1": "abd", "ca-west-1": "abc", "mx-central-1": "abc", "sa-east-1": "abc",
    "eu-west-1": "abc", "eu-west-2": "abc", "eu-west-3": "abc", "eu-central-1": "abc", "eu-central-2": "abc",
    "eu-north-1": "abc", "eu-south-1": "abc", "eu-south-2": "abc",
    "ap-northeast-1": "acd", "ap-northeast-2": "abcd", "ap-northeast-3": "abc", "ap-southeast-1": "abc",
    "ap-southeast-2": "abc", "ap-southeast-3": "abc", "ap-southeast-4": "abc", "ap-southeast-5": "abc",
    "ap-southeast-7": "abc", "ap-south-1": "abc", "ap-south-2": "abc", "ap-east-1": "abc",
    "me-south-1": "abc", "me-central-1": "abc", "il-central-1": "abc", "af-south-1": "abc",
    "us-gov-west-1": "abc", "us-gov-east-1": "abc", "cn-north-1": "abd", "cn-northwest-1": "abc",
}


@dataclass(frozen=True)
class InstanceType:
    name: str
    architecture: str
    """``x86_64`` or ``arm64``."""
    first_interface: str
    """The name Amazon Linux 2023 gives the primary network interface."""
    ebs_optimized: bool
    """Whether the type can be EBS-optimized (on Nitro types it always is)."""


_NITRO_SIZES = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge")
_BURSTABLE_SIZES = ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge")
# family -> (architecture, sizes); all Nitro: first interface ens5, EBS-optimized.
_NITRO_FAMILIES = {
    **{family: ("x86_64", _NITRO_SIZES) for family in (
        "m5", "m5a", "m6i", "m6a", "m7i", "m7a", "c5", "c5a", "c6i", "c6a", "c7i", "c7a", "r5", "r5a", "r6i",
        "r6a", "r7i", "r7a")},
    **{family: ("arm64", _NITRO_SIZES) for family in ("m6g", "m7g", "c6g", "c7g", "r6g", "r7g")},
    "t3": ("x86_64", _BURSTABLE_SIZES), "t3a": ("x86_64", _BURSTABLE_SIZES), "t4g": ("arm64", _BURSTABLE_SIZES),
}
# Xen types: first interface eth0; t2 cannot be EBS-optimized.
_XEN_TYPES = (
    *(InstanceType(f"t2.{size}", "x86_64", "eth0", False) for size in _BURSTABLE_SIZES),
    *(InstanceType(f"m4.{size}", "x86_64", "eth0", True) for size in ("large", "xlarge", "2xlarge", "4xlarge")),
)

INSTANCE_TYPES: dict[str, InstanceType] = {
    **{f"{family}.{size}": InstanceType(f"{family}.{size}", arch, "ens5", True)
       for family, (arch, sizes) in _NITRO_FAMILIES.items() for size in sizes},
    **{t.name: t for t in _XEN_TYPES},
}


def zones_of(region: str) -> tuple[str, ...]:
    """The zone names of ``region`` (empty for a region not in the table)."""
    return tuple(region + letter for letter in REGION_ZONES.get(region, ""))


def instance_type(name: str) -> InstanceType | None:
    return INSTANCE_TYPES.get(name)
