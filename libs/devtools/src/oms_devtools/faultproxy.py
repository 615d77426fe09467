"""A fault-injecting TCP proxy, put between the processes under test and Postgres or
RabbitMQ so that tests can take a server away from them without touching the server
itself (anything else on the machine keeps using it).

    proxy = FaultProxy("127.0.0.1", 5432).start()
    url = proxy.rewrite("postgresql://postgres@127.0.0.1:5432/db")  # give this to the service
    proxy.cut()          # refuse new connections, reset the existing ones: a server that died
    proxy.blackhole()    # accept, forward nothing, close nothing: a network partition
    proxy.delay(0.2)     # every byte arrives 200 ms late
    proxy.restore()      # back to normal; what a partition held back flows on

Faults apply per direction: `Direction.UPSTREAM` (client to server) and
`Direction.DOWNSTREAM` (server to client), both by default, so a one-way partition
(requests arrive, answers do not) is one call.

The proxies of a process run on one event loop in a thread of their own: test code
may block its own loop (e.g. waiting for a process to stop, whose shutdown needs the
database) without stalling the traffic it is proxying. The control methods are plain
functions, callable from any thread, and return once the fault is in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")

# A reader is paused once this much is waiting to be forwarded, so a slow or
# partitioned peer backs up into the kernel's buffers, as it would on a real network.
_HIGH_WATER = 256 * 1024


class Direction(enum.Flag):
    UPSTREAM = enum.auto()  # client -> server
    DOWNSTREAM = enum.auto()  # server -> client
    BOTH = UPSTREAM | DOWNSTREAM


@dataclass
class _Fault:
    blackholed: bool = False
    delay: float = 0.0


class _LoopThread:
    """One event loop in a daemon thread, shared by every proxy of the process."""

    _instance: _LoopThread | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="fault-proxies", daemon=True
        )
        self._thread.start()

    @classmethod
    def shared(cls) -> _LoopThread:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def run(self, coroutine: Awaitable[T], timeout: float = 10.0) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("a proxy's control methods cannot be called from its own loop")

        async def wrapped() -> T:
            return await coroutine

        future: Future[T] = asyncio.run_coroutine_threadsafe(wrapped(), self.loop)
        return future.result(timeout)

    def call(self, function: Callable[[], T], timeout: float = 10.0) -> T:
        async def in_loop() -> T:
            return function()

        return self.run(in_loop(), timeout)


class _Side(asyncio.Protocol):
    """One TCP connection of a link (to the client, or to the server)."""

    def __init__(self, link: _Link, direction_out: Direction) -> None:
        self.link = link
        # The direction of the bytes this side receives.
        self.direction_out = direction_out
        self.transport: asyncio.Transport | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.link.connected(self)

    def data_received(self, data: bytes) -> None:
        self.link.received(self.direction_out, data)

    def eof_received(self) -> bool:
        self.link.ended(self.direction_out)
        return True  # keep our writing half open until the peer's end is forwarded

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.link.ended(self.direction_out)

    def pause_writing(self) -> None:
        self.writing_paused = True
        self.link.flow_changed()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self.link.flow_changed()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.reading_paused and not self.closed:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and self.reading_paused and not self.closed:
            self.reading_paused = False
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            transport_socket = self.transport.get_extra_info("socket")
            if transport_socket is not None:
                # Linger 0: the peer gets a RST, as from a server that went away.
                with contextlib.suppress(OSError):
                    transport_socket.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
            self.transport.abort()


class _Pending:
    """Bytes travelling one way through a link, each chunk with the time it may leave."""

    def __init__(self) -> None:
        self.chunks: deque[tuple[float, bytes]] = deque()
        self.size = 0
        self.ended = False  # the sender closed its end: close the receiver once drained
        self.end_forwarded = False


class _Link:
    """A client connection and the connection to the server made for it."""

    def __init__(self, proxy: FaultProxy, client: _Side) -> None:
        self.proxy = proxy
        self.loop = asyncio.get_running_loop()
        self.client = client
        self.server = _Side(self, Direction.DOWNSTREAM)
        self.pending = {Direction.UPSTREAM: _Pending(), Direction.DOWNSTREAM: _Pending()}
        self._timer: asyncio.TimerHandle | None = None
        self.opening: asyncio.Future[None] | None = None  # the connection to the server
        self.dead = False

    def source(self, direction: Direction) -> _Side:
        return self.client if direction is Direction.UPSTREAM else self.server

    def sink(self, direction: Direction) -> _Side:
        return self.server if direction is Direction.UPSTREAM else self.client

    async def open(self, host: str, port: int) -> None:
        try:
            await self.loop.create_connection(lambda: self.server, host, port)
        except OSError:
            self.kill()

    def connected(self, side: _Side) -> None:
        if side is self.server:
            self.pump()

    def received(self, direction: Direction, data: bytes) -> None:
        pending = self.pending[direction]
        fault = self.proxy.faults[direction]
        sink = self.sink(direction)
        if (
            not pending.chunks
            and not fault.blackholed
            and not fault.delay
            and sink.transport is not None
            and not sink.writing_paused
        ):
            sink.write(data)  # the usual case, kept cheap: straight through
            return
        release = time.monotonic() + fault.delay
        if pending.chunks:  # never overtake earlier bytes
            release = max(release, pending.chunks[-1][0])
        pending.chunks.append((release, data))
        pending.size += len(data)
        self.pump()

    def ended(self, direction: Direction) -> None:
        self.pending[direction].ended = True
        self.pump()

    def flow_changed(self) -> None:
        self.pump()

    def pump(self) -> None:
        """Forward what may go now, pause readers that are ahead, and close a side whose
        peer closed once everything before the close got through."""
        if self.dead:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = time.monotonic()
        next_release: float | None = None
        for direction, pending in self.pending.items():
            fault = self.proxy.faults[direction]
            sink, source = self.sink(direction), self.source(direction)
            can_send = sink.transport is not None and not fault.blackholed
            while can_send and pending.chunks and not sink.writing_paused:
                release, data = pending.chunks[0]
                if release > now:
                    next_release = release if next_release is None else min(next_release, release)
                    break
                pending.chunks.popleft()
                pending.size -= len(data)
                sink.write(data)
            if fault.blackholed or pending.size > _HIGH_WATER or sink.writing_paused:
                source.pause_reading()
            else:
                source.resume_reading()
            if can_send and pending.ended and not pending.chunks and not pending.end_forwarded:
                pending.end_forwarded = True
                sink.close()
        if all(p.end_forwarded for p in self.pending.values()) or (
            self.client.closed and self.server.closed
        ):
            self.finish()
            return
        if next_release is not None:
            self._timer = self.loop.call_at(
                self.loop.time() + max(0.0, next_release - now), self.pump
            )

    def kill(self) -> None:
        """Reset both connections and drop whatever was on its way."""
        self.client.abort()
        self.server.abort()
        self.finish()

    def finish(self) -> None:
        if self.dead:
            return
        self.dead = True
        if self._timer is not None:
            self._timer.cancel()
        for pending in self.pending.values():
            pending.chunks.clear()
            pending.size = 0
        self.proxy.links.discard(self)


_DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "amqp": 5672, "amqps": 5671}


class FaultProxy:
    """Forwards every connection made to it to `upstream_host:upstream_port`, with
    the faults set by `cut`, `blackhole`, `delay` (undone by `restore`)."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        name: str = "proxy",
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.name = name
        self._listen = (listen_host, listen_port)
        self._runner = _LoopThread.shared()
        self._server: asyncio.Server | None = None
        self.faults = {Direction.UPSTREAM: _Fault(), Direction.DOWNSTREAM: _Fault()}
        self.refusing = False
        self.links: set[_Link] = set()
        self.accepted = 0  # connections accepted since the start, for tests and logs

    @classmethod
    def in_front_of(cls, url: str, name: str = "proxy") -> FaultProxy:
        """A proxy (not started) to the server of `url` (postgresql://, amqp://);
        `rewrite(url)` then points a client at it."""
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS[parts.scheme.split("+")[0]]
        return cls(parts.hostname or "127.0.0.1", port, name=name)

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._runner.run(self._start())
        return self

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Accepted(self), self._listen[0], self._listen[1], reuse_address=True
        )

    def close(self) -> None:
        """Stop listening and reset every connection."""
        self._runner.call(self._close_now)

    def _close_now(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in list(self.links):
            link.kill()

    @property
    def port(self) -> int:
        assert self._server is not None, "start the proxy first"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def host(self) -> str:
        return self._listen[0]

    def rewrite(self, url: str) -> str:
        """`url` (postgresql://, amqp://, ...) with its host and port replaced by the
        proxy's; user, password, path and query stay."""
        parts = urlsplit(url)
        credentials, _, _ = parts.netloc.rpartition("@")
        netloc = f"{credentials}@" if credentials else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{self.host}:{self.port}"))

    # -- faults -----------------------------------------------------------------------

    def cut(self) -> None:
        """The server is gone: new connections are reset as soon as they are made and
        the open ones are reset now (their unforwarded bytes are lost)."""

        def apply() -> None:
            self.refusing = True
            for link in list(self.links):
                link.kill()

        self._runner.call(apply)

    def blackhole(self, direction: Direction = Direction.BOTH) -> None:
        """A network partition: connections are accepted, nothing is forwarded in
        `direction` and nothing is closed, so the peers wait until their own timeouts
        notice (or `restore` heals it and the held bytes flow on)."""
        self._set(direction, blackholed=True)

    def delay(self, seconds: float, direction: Direction = Direction.BOTH) -> None:
        """Every chunk arrives `seconds` late (order kept)."""
        self._set(direction, delay=seconds)

    def restore(self) -> None:
        """No faults: new connections go through, held bytes flow on."""

        def apply() -> None:
            self.refusing = False
            for fault in self.faults.values():
                fault.blackholed = False
                fault.delay = 0.0
            for link in list(self.links):
                link.pump()

        self._runner.call(apply)

    def reset_connections(self) -> None:
        """Reset the open connections (dropping what they had on the way), and let new
        ones through as the current faults allow."""

        def apply() -> None:
            for link in list(self.links):
                link.kill()

        self._runner.call(apply)

    def _set(self, direction: Direction, **changes: float | bool) -> None:
        def apply() -> None:
            for one in (Direction.UPSTREAM, Direction.DOWNSTREAM):
                if one in direction:
                    for key, value in changes.items():
                        setattr(self.faults[one], key, value)
            for link in list(self.links):
                link.pump()

        self._runner.call(apply)

    def connection_count(self) -> int:
        return self._runner.call(lambda: len(self.links))

    @contextlib.contextmanager
    def cut_off(self) -> Iterator[None]:
        self.cut()
        try:
            yield
        finally:
            self.restore()

    @contextlib.contextmanager
    def partitioned(self, direction: Direction = Direction.BOTH) -> Iterator[None]:
        self.blackhole(direction)
        try:
            yield
        finally:
            self.restore()

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self._server is not None else "not started"
        return f"FaultProxy({self.name} {where} -> {self.upstream[0]}:{self.upstream[1]})"


class _Accepted(_Side):
    """The client side of a new link, created by the listening server."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        super().__init__(_Link(proxy, self), Direction.UPSTREAM)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.proxy.accepted += 1
        if self.proxy.refusing:
            self.link.kill()
            return
        self.proxy.links.add(self.link)
        self.link.opening = asyncio.ensure_future(self.link.open(*self.proxy.upstream))
