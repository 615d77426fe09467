"""Idempotency-key bookkeeping (plain Python, no web framework)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

# Keys are scoped per concrete request path, so the same key may be used for
# e.g. a capture on two different authorizations without clashing.
Scope = tuple[str, str]


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    status: int
    body: dict[str, Any]


def fingerprint(body: bytes) -> str:
    """Identify a request body independently of JSON formatting.

    A client that re-serialises the same payload (different whitespace or key
    order) is still retrying the same request, so we compare canonical JSON.
    """
    if not body.strip():
        # Void accepts an empty body or `{}`; they mean the same thing.
        canonical = b"{}"
    else:
        try:
            parsed = json.loads(body)
        except ValueError:
            canonical = b"raw:" + body
        else:
            canonical = json.dumps(
                parsed, sort_keys=True, separators=(",", ":")
            ).encode()
    return hashlib.sha256(canonical).hexdigest()
