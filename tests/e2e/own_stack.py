"""A stack of its own, beside the session's: its own database, vhost, ports, fault
proxies and processes (the session's settings unless overridden), for tests that
would disturb the session's stack or must not be disturbed by it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from oms_devtools import infra
from oms_devtools.faultproxy import FaultProxy
from oms_devtools.stack import Stack, TlsFiles


@asynccontextmanager
async def stack_of_its_own(
    session_stack: Stack,
    suffix: str,
    log_dir: Path,
    *,
    tls: TlsFiles | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Stack]:
    """Started, ready, as many replicas as the session's; stopped and its database and
    vhost removed afterwards."""
    database_url = f"{session_stack.database_url}_{suffix}"
    session_vhost = urlsplit(session_stack.amqp_url).path.lstrip("/")
    vhost = f"{session_vhost}_{suffix}"
    amqp_url = session_stack.amqp_url.rsplit("/", 1)[0] + f"/{vhost}"
    infra.create_vhost(vhost)
    await infra.recreate_database(database_url)
    database_proxy, broker_proxy = (
        FaultProxy.in_front_of(database_url).start(),
        FaultProxy.in_front_of(amqp_url).start(),
    )
    own = Stack.on_free_ports(
        database_url=database_url,
        amqp_url=amqp_url,
        log_dir=log_dir,
        replicas=session_stack.replicas,
        database_proxy=database_proxy,
        broker_proxy=broker_proxy,
        tls=tls,
        env={**session_stack.env, **(env or {})},
    )
    try:
        await asyncio.to_thread(infra.migrate_all, {"OMS_DATABASE_URL": database_url})
        async with own.running():
            yield own
    finally:
        database_proxy.close()
        broker_proxy.close()
        await infra.drop_database(database_url)
        infra.delete_vhost(vhost)
