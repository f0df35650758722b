"""A synthesized stack as data: the Terraform JSON that cdktf writes, read back for the views that describe a
deployment before it exists (``harbor-ha diagram``, ``harbor-ha cost``).

    docs = synthesize(["active-active"], load_settings())   # name -> the parsed cdk.tf.json
    stack = SynthesizedStack(docs["active-active"])
    for address, body in stack.resources("aws_instance"): ...
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Iterator

from harbor_ha.rules import REPLICATION_CONFIGURATOR_KEY
from harbor_ha.settings import HarborHaSettings

# A view synthesizes without contacting anything: the local target's provider only needs an endpoint URL
# to write into the JSON, and no view reads it.
UNUSED_ENDPOINT = "http://127.0.0.1:4566"

_REFERENCE = re.compile(r"\b(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)")


def synthesize(stacks, settings: HarborHaSettings) -> dict[str, dict]:
    """The Terraform JSON of each of ``stacks`` (names), built from ``settings`` in one App, in a throw-away
    directory: stack name -> parsed ``cdk.tf.json``."""
    from harbor_ha.app import build_app

    stacks = tuple(stacks)
    with tempfile.TemporaryDirectory(prefix="harbor-ha-synth-") as outdir:
        build_app(settings.replace(stacks=stacks), outdir=outdir, local_endpoint=UNUSED_ENDPOINT).synth()
        return {name: json.loads((Path(outdir) / "stacks" / name / "cdk.tf.json").read_text()) for name in stacks}


class SynthesizedStack:
    """Read-only helpers over one stack's Terraform JSON."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self._regions = {f"aws.{p['alias']}" if p.get("alias") else "aws": p["region"]
                         for p in doc.get("provider", {}).get("aws", [])}

    def resources(self, kind: str) -> list[tuple[str, dict]]:
        """``(address, body)`` of every resource of type ``kind``, in name order."""
        return [(f"{kind}.{name}", body) for name, body in sorted(self.doc.get("resource", {}).get(kind, {}).items())]

    def all_resources(self) -> Iterator[tuple[str, str, dict]]:
        """``(type, address, body)`` of every resource."""
        for kind in sorted(self.doc.get("resource", {})):
            for address, body in self.resources(kind):
                yield kind, address, body

    def body(self, address: str) -> dict:
        kind, name = address.split(".", 1)
        return self.doc["resource"][kind][name]

    def region(self, body: dict) -> str:
        """The region of a resource: its provider's."""
        return self._regions[body.get("provider", "aws")]

    @property
    def regions(self) -> list[str]:
        """Every region the stack deploys to, the default provider's first."""
        return list(dict.fromkeys(self._regions.values()))

    @staticmethod
    def references(value, kind: str | None = None) -> list[str]:
        """Addresses of the resources that ``value`` (any JSON value) refers to, optionally of one type, in order."""
        text = value if isinstance(value, str) else json.dumps(value)
        found = (f"{m.group(1)}.{m.group(2)}" for m in _REFERENCE.finditer(text) if kind in (None, m.group(1)))
        return list(dict.fromkeys(found))

    def reference(self, value, kind: str) -> str | None:
        """The first resource of type ``kind`` that ``value`` refers to, if any."""
        found = self.references(value, kind)
        return found[0] if found else None

    def bucket_objects(self) -> dict[str, list[str]]:
        """Bucket -> the objects the configuration stores in it."""
        found: dict[str, list[str]] = {}
        for address, body in self.resources("aws_s3_object"):
            bucket = self.reference(body.get("bucket"), "aws_s3_bucket")
            if bucket:
                found.setdefault(bucket, []).append(address)
        return found

    def carrier_buckets(self) -> set[str]:
        """The replication carriers: the buckets holding the replication configurator (an image bucket may hold
        harbor-ha's boot programs)."""
        return {self.reference(body.get("bucket"), "aws_s3_bucket") for _, body in self.resources("aws_s3_object")
                if body.get("key") == REPLICATION_CONFIGURATOR_KEY} - {None}

    def log_buckets(self) -> set[str]:
        """The buckets that receive logs: S3 access logs and VPC flow logs."""
        found = {self.reference(body.get("target_bucket"), "aws_s3_bucket")
                 for _, body in self.resources("aws_s3_bucket_logging")}
        found |= {self.reference(body.get("log_destination"), "aws_s3_bucket")
                  for _, body in self.resources("aws_flow_log")}
        return found - {None}
