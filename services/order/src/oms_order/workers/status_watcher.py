"""Tells waiting requests (`Prefer: wait=N`) the moment their order's status moves.

A trigger NOTIFYs every status change to every order replica, so the request that
waits and the consumer that moved the order need not be in the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator

from oms_runtime.notifications import listen_forever

CHANNEL = "oms_order_status"


class OrderStatusWatcher:
    def __init__(self, listen_dsn: str) -> None:
        self._listen_dsn = listen_dsn
        self._waiters: dict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        listener = asyncio.create_task(listen_forever(self._listen_dsn, CHANNEL, self._notified))
        try:
            await self._stopped.wait()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def stop(self) -> None:
        self._stopped.set()

    @contextlib.asynccontextmanager
    async def watching(self, order_id: str) -> AsyncIterator[asyncio.Future[None]]:
        """A future that completes when the order's status next changes. Register
        before reading the order, so a change in between is not missed."""
        changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[order_id].add(changed)
        try:
            yield changed
        finally:
            self._waiters[order_id].discard(changed)
            if not self._waiters[order_id]:
                del self._waiters[order_id]

    def _notified(self, order_id: str) -> None:
        # An empty payload (a reconnect) may have hidden any change: wake everyone.
        targets = [order_id] if order_id else list(self._waiters)
        for target in targets:
            for waiter in self._waiters.get(target, ()):
                if not waiter.done():
                    waiter.set_result(None)
