"""A bare HTTP/1.1 card gateway for the gateway client's tests: it reads a request and
approves it, nothing more, so a test controls what happens to the connection."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson

_ids = itertools.count(1)


async def read_request(reader: asyncio.StreamReader) -> None:
    """One request, head and body (raises IncompleteReadError once the client left)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    await reader.readexactly(length)


async def approve(writer: asyncio.StreamWriter) -> None:
    """The gateway's answer to an authorization: approved, the connection kept open."""
    body = orjson.dumps({"id": f"auth_{next(_ids)}", "amount": 1000, "status": "authorized"})
    writer.write(
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
        b"Connection: keep-alive\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()


@contextlib.asynccontextmanager
async def serving(
    conversation: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    """The gateway's base URL while `conversation` answers each connection; the
    connection is closed when it returns, or when the client left."""

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await conversation(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connected, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()
