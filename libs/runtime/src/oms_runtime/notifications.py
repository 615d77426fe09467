"""Wake-ups from Postgres LISTEN/NOTIFY, so background loops need not poll tightly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

log = logging.getLogger(__name__)


async def listen_forever(dsn: str, channel: str, on_notify: Callable[[str], None]) -> None:
    """Call `on_notify(payload)` for every notification on `channel`, reconnecting as
    needed.

    Also calls it with an empty payload after each (re)connect: anything written
    while nobody listened is then picked up at once.
    """
    while True:
        try:
            connection = await asyncpg.connect(dsn)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("LISTEN connection failed", extra={"channel": channel, "error": repr(exc)})
            await asyncio.sleep(2.0)
            continue
        closed = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _conn, ev=closed: ev.set())
            await connection.add_listener(
                channel, lambda _conn, _pid, _channel, payload: on_notify(payload)
            )
            on_notify("")
            await closed.wait()
        finally:
            with contextlib.suppress(Exception):
                await connection.close()
        await asyncio.sleep(1.0)
