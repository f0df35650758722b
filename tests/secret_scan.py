"""Finds plaintext secrets in what harbor-ha writes: synthesized stacks, the user-data inside them, Terraform
state. By pattern (private keys, AWS access keys, a password / token / secret key given a literal value) and by
known value (secrets read back from the target). References (``${...}``, ``$VAR``), ARNs and booleans are not
secrets."""

from __future__ import annotations

import json
import re
from typing import Iterable, Iterator

from harbor_ha.target import LOCAL_ACCESS_KEY

# Not secrets: the local emulator's credentials (they open nothing anywhere else) and the access key id of AWS's
# documentation, which moto answers as every caller's user id.
PUBLIC_VALUES = {LOCAL_ACCESS_KEY, "AKIAIOSFODNN7EXAMPLE"}

PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    # key: value / key=value / "key": "value", where the key names a password, token or secret.
    "literal secret": re.compile(
        r"""(?ix)["']?\b([a-z0-9_.-]*(?:password|passwd|secret_key|secret_string|auth_token|private_key|api_key|
        access_token|client_secret))["']?\s*[:=]\s*["']?([^\s"',}\]]{8,})"""),
}
# Values a secret-named key may hold that are not secrets: references resolved elsewhere, ARNs, flags.
_NOT_A_SECRET = re.compile(r"""(?x)^(?:\$\{|\$[A-Za-z_(]|\{\{|arn:|true$|false$|null$|\d+$|/|[A-Z_]+$|[a-z_]+\.[a-z_.]+$)""")


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (str, int, float, bool)) or item is None:
                yield f"{json.dumps(key)}: {json.dumps(item)}"
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def find_secrets(document, known: Iterable[str] = ()) -> list[str]:
    """Every plaintext secret in ``document`` (parsed JSON or text): one line each, naming what was found."""
    found = []
    known = [k for k in known if k]
    for text in ([document] if isinstance(document, str) else _strings(document)):
        for kind, pattern in PATTERNS.items():
            for match in pattern.finditer(text):
                value = match.group(2) if kind == "literal secret" else match.group(0)
                if value in PUBLIC_VALUES or (kind == "literal secret" and _NOT_A_SECRET.match(value)):
                    continue
                found.append(f"{kind}: {match.group(0)[:80]}")
        found += [f"known secret value {value[:4]}...: in {text[:80]!r}" for value in known if value in text]
    return sorted(set(found))


def state_without_the_redis_token(state: dict, redis_tokens: Iterable[str]) -> tuple[dict, list[str]]:
    """A Terraform state (the .tfstate JSON) minus the one secret it may hold, ElastiCache's AUTH token (the
    replication group's ``auth_token``, its generator, the token secret's version: wherever its value is), and
    the problems with how it holds it: each attribute holding it must be marked sensitive."""
    tokens = {token for token in redis_tokens if token}
    problems = []
    kept = []
    for resource in state.get("resources", []):
        for instance in resource.get("instances", []):
            attributes = dict(instance.get("attributes", {}))
            sensitive = {step["value"] for path in instance.get("sensitive_attributes", []) for step in path
                         if step.get("type") == "get_attr"}
            for key, value in attributes.items():
                if isinstance(value, str) and value in tokens:
                    if key not in sensitive:
                        problems.append(f"{resource['type']}.{resource['name']}.{key} holds the Redis token unmarked")
                    attributes[key] = "(the Redis token, sensitive)"
            kept.append(attributes)
    return {"resources": kept, "outputs": state.get("outputs", {})}, problems
