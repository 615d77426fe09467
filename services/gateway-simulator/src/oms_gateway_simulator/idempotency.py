"""Idempotency-key bookkeeping (plain Python, no web framework)."""

from __future__ import annotations

import asyncio
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


class IdempotencyStore:
    def __init__(self) -> None:
        self._responses: dict[Scope, StoredResponse] = {}
        self._locks: dict[Scope, asyncio.Lock] = {}

    def lock(self, scope: Scope) -> asyncio.Lock:
        # One lock per key: a duplicate arriving while the first request is
        # still being processed waits and then replays instead of executing.
        return self._locks.setdefault(scope, asyncio.Lock())

    def get(self, scope: Scope) -> StoredResponse | None:
        return self._responses.get(scope)

    def put(self, scope: Scope, response: StoredResponse) -> None:
        self._responses[scope] = response
