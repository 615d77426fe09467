"""Per-caller rate limits for write endpoints (429 with Retry-After).

A token bucket per caller, kept in the process: with N replicas a caller gets N
times the rate at most, which is enough to stop a runaway client or a scripted
attack on one customer's account without a shared store.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from oms_runtime.auth import Principal, current_principal
from oms_runtime.problems import Problem


class TokenBuckets:
    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_callers: int = 100_000,
    ) -> None:
        self._rate = rate_per_second
        self._burst = burst
        self._clock = clock
        self._max_callers = max_callers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, caller: str) -> float:
        """Spend one token; returns 0, or the seconds until one is available."""
        now = self._clock()
        tokens, stamp = self._buckets.pop(caller, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - stamp) * self._rate)
        if tokens >= 1:
            self._buckets[caller] = (tokens - 1, now)
            wait = 0.0
        else:
            self._buckets[caller] = (tokens, now)
            wait = (1 - tokens) / self._rate
        while len(self._buckets) > self._max_callers:
            self._buckets.popitem(last=False)  # forget the least recent caller
        return wait


async def rate_limited(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> None:
    """FastAPI dependency: customers are limited, staff (admin) are not."""
    buckets: TokenBuckets | None = getattr(request.app.state, "rate_limits", None)
    if buckets is None or principal.is_admin:
        return
    wait = buckets.take(principal.subject)
    if wait > 0:
        problem = Problem(
            429,
            "too-many-requests",
            "Too many requests",
            f"Slow down; try again in {math.ceil(wait)} s",
        )
        problem.headers["Retry-After"] = str(math.ceil(wait))
        raise problem
