"""The managed-settings checksum, ETag and `If-None-Match` matching (gateway protocol,
"Managed settings").

The client computes `sha256:` + hex SHA-256 of the settings JSON with keys sorted at every
level and no whitespace (JSON.stringify of the sorted object), so this must produce the same
bytes JavaScript does.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

_POLICY_NAMESPACE = uuid.UUID("6f1c3f0e-2b8e-4c55-9a4e-3c0a9e6d7b21")


def canonical_json(value: Any) -> str:
    """JSON.stringify of the key-sorted value: no spaces, non-ASCII kept as is, integral
    floats written as integers (JavaScript has one number type: 1.0 prints as 1)."""
    return json.dumps(_js_numbers(value), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def _js_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _js_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_js_numbers(v) for v in value]
    return value


def settings_checksum(settings: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(settings).encode()).hexdigest()


def policy_uuid(checksum: str) -> str:
    """A stable id for one version of the policy: the same on every replica."""
    return str(uuid.uuid5(_POLICY_NAMESPACE, checksum))


def etag(checksum: str) -> str:
    return f'"{checksum}"'


def not_modified(if_none_match: str | None, checksum: str) -> bool:
    """True when `If-None-Match` names this checksum (RFC 9110 §13.1.2, weak comparison).

    `*` is not a match here: Claude Desktop sends it to ask whether settings exist and the
    protocol says to answer as without the header (a 304 it did not ask for is a failure)."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip().removeprefix("W/").strip()
        if tag.strip('"') == checksum:
            return True
    return False
