"""The whole system as real processes: four services and the gateway simulator.

Used by the end-to-end tests and the benchmark. Each process logs to its own file;
services can be stopped, killed (SIGKILL) and restarted individually. Given fault
proxies (oms_devtools.faultproxy), the services reach Postgres and RabbitMQ through
them, so tests can take the servers away from the services alone; the gateway
simulator, the external party, keeps its own direct connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from oms_devtools.faultproxy import FaultProxy

SERVICES = ("order", "inventory", "payment", "shipping")
GATEWAY = "gateway"


def _ephemeral_ports_start(default: int = 32768) -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def free_port_block(size: int, first: int = 20000, last: int | None = None) -> int:
    """The first port of `size` consecutive free ports, picked at random so that two
    stacks (two test runs, a test run and a benchmark) do not collide.

    Below the kernel's ephemeral range: a stopped service's port must still be free
    when it restarts, and one in that range can meanwhile become the local end of any
    outgoing connection on the machine (seen as "address already in use")."""
    last = min(last or 60000, _ephemeral_ports_start())
    if last - size <= first:
        raise RuntimeError(f"no room for {size} ports between {first} and {last}")
    for _ in range(100):
        start = random.randrange(first, last - size)
        try:
            with contextlib.ExitStack() as held:
                for port in range(start, start + size):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
    raise RuntimeError("no free block of ports found")


@dataclass(frozen=True)
class TlsFiles:
    """A certificate and key every process serves HTTPS with, and the CA that signed
    them (which clients, the payment service's gateway client included, trust)."""

    cert_file: Path
    key_file: Path
    ca_file: Path


@dataclass
class Stack:
    database_url: str
    amqp_url: str
    log_dir: Path
    base_port: int = 18000
    gateway_port: int = 18090
    env: dict[str, str] = field(default_factory=dict)
    # Processes per service: "order" is the first, "order:2" the second, ... all
    # competing for the same queue; ports follow on from the first ones.
    replicas: int = 1
    # Between the services and their servers, when given.
    database_proxy: FaultProxy | None = None
    broker_proxy: FaultProxy | None = None
    tls: TlsFiles | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # How each process was last started (environment, port, role), to revive it.
    _started_as: dict[str, tuple[Mapping[str, str], int | None, str]] = field(default_factory=dict)
    # Where each process's log stood when it was last started: its own lines follow.
    _log_offsets: dict[str, int] = field(default_factory=dict)

    @classmethod
    def on_free_ports(cls, *, replicas: int = 1, **settings: Any) -> Stack:
        """A stack whose processes (every replica, and the gateway simulator) listen
        on a block of ports free right now."""
        first = free_port_block(len(SERVICES) * replicas + 1)
        return cls(
            base_port=first,
            gateway_port=first + len(SERVICES) * replicas,
            replicas=replicas,
            **settings,
        )

    def port(self, name: str) -> int:
        if name == GATEWAY:
            return self.gateway_port
        started_on = self._started_as.get(name, ({}, None, ""))[1]
        if started_on is not None:
            return started_on
        service, _, suffix = name.partition(":")
        replica = int(suffix) - 1 if suffix.isdigit() else 0
        return self.base_port + replica * len(SERVICES) + SERVICES.index(service)

    def replica_names(self, service: str) -> list[str]:
        return [service] + [f"{service}:{n}" for n in range(2, self.replicas + 1)]

    def all_names(self) -> list[str]:
        """Every process of the stack as started by `start_all`."""
        return [GATEWAY, *(name for s in SERVICES for name in self.replica_names(s))]

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    def url(self, name: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port(name)}"

    def verify(self) -> ssl.SSLContext | bool:
        """What an HTTP client of the stack verifies certificates with."""
        if self.tls is None:
            return True
        return ssl.create_default_context(cafile=str(self.tls.ca_file))

    def common_env(self) -> dict[str, str]:
        proxied_database = self.database_url
        if self.database_proxy is not None:
            proxied_database = self.database_proxy.rewrite(self.database_url)
        proxied_broker = self.amqp_url
        if self.broker_proxy is not None:
            proxied_broker = self.broker_proxy.rewrite(self.amqp_url)
        tls = {}
        if self.tls is not None:
            tls = {
                "OMS_TLS_CERT_FILE": str(self.tls.cert_file),
                "OMS_TLS_KEY_FILE": str(self.tls.key_file),
                "OMS_GATEWAY_CA_FILE": str(self.tls.ca_file),
            }
        return {
            **os.environ,
            "OMS_DATABASE_URL": proxied_database,
            "OMS_AMQP_URL": proxied_broker,
            # The simulator stands for a gateway elsewhere: not behind the proxies.
            "OMS_GATEWAY_DATABASE_URL": self.database_url,
            "OMS_GATEWAY_URL": self.url(GATEWAY),
            "OMS_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            **tls,
            **self.env,
        }

    def start(
        self,
        name: str,
        extra_env: Mapping[str, str] | None = None,
        port: int | None = None,
        role: str = "serve",
    ) -> None:
        """Start `name` (a service, or "gateway"). `name` may carry a suffix for a
        second process of the same service ("order:2" on another `port`, or
        "order:relay" with `role="relay"`: a standalone outbox relay)."""
        service = name.split(":")[0]
        self._started_as[name] = (dict(extra_env or {}), port, role)
        if service == GATEWAY:
            command = [sys.executable, "-m", "oms_gateway_simulator"]
        else:
            command = [sys.executable, "-m", f"oms_{service}", role]
        if role == "serve":
            command += ["--port", str(port or self.port(name))]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self._log_path(name).open("ab")
        self._log_offsets[name] = log.tell()
        self.processes[name] = subprocess.Popen(
            command,
            env={**self.common_env(), **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Stack]:
        """Every process started and ready for the block, stopped after it (the fault
        proxies restored first, so each can reach its servers to stop cleanly)."""
        self.start_all()
        try:
            await self.wait_ready()
            yield self
        finally:
            for proxy in (self.database_proxy, self.broker_proxy):
                if proxy is not None:
                    proxy.restore()
            self.stop_all()

    def start_all(self, extra_env: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.start(GATEWAY, (extra_env or {}).get(GATEWAY))
        for service in SERVICES:
            for name in self.replica_names(service):
                self.start(name, (extra_env or {}).get(service))

    def start_extra(
        self, service: str, extra_env: Mapping[str, str] | None = None, port: int | None = None
    ) -> str:
        """Start one more serving process of `service` beyond the stack's replicas (on
        a free `port`); returns its name, for `stop`, `kill` and `revive`."""
        number = self.replicas + 1
        while f"{service}:{number}" in self.processes:
            number += 1
        name = f"{service}:{number}"
        self.start(name, extra_env, port=port or free_port_block(1))
        return name

    async def restart(self, service: str, extra_env: Mapping[str, str] | None = None) -> None:
        """Restart every replica of `service` with `extra_env` (gracefully)."""
        for name in self.replica_names(service):
            self.stop(name)
        for name in self.replica_names(service):
            self.start(name, extra_env)
        await self.wait_ready(self.replica_names(service))

    async def roll(self, service: str) -> None:
        """A rolling restart: each replica of `service` in turn is stopped gracefully,
        started again as it was, and ready before the next one goes."""
        for name in self.replica_names(service):
            self.stop(name)
            self.revive(name)
            await self.wait_ready([name])

    @contextlib.asynccontextmanager
    async def restarted_with(self, service: str, env: Mapping[str, str]) -> AsyncIterator[None]:
        """Run the block with every replica of `service` started with `env`."""
        await self.restart(service, env)
        try:
            yield
        finally:
            await self.restart(service)

    @contextlib.asynccontextmanager
    async def only_first_replica(
        self, service: str, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[str]:
        """Run the block with one process of `service` (the first, started with `env`)
        and its other replicas down, for what one process decides alone (e.g. its
        circuit breaker); afterwards every replica runs as before."""
        first, *others = self.replica_names(service)
        for name in others:
            self.stop(name)
        self.stop(first)
        self.start(first, env)
        try:
            await self.wait_ready([first])
            yield first
        finally:
            self.stop(first)
            self.start(first)
            for name in others:
                self.revive(name)
            await self.wait_ready(self.replica_names(service))

    @contextlib.asynccontextmanager
    async def stopped(self, service: str) -> AsyncIterator[None]:
        """Run the block with `service` down (all replicas), then bring it back."""
        self.stop_service(service)
        try:
            yield
        finally:
            await self.start_service(service)

    def stop_service(self, service: str) -> None:
        for name in self.replica_names(service):
            self.stop(name)

    async def start_service(self, service: str) -> None:
        """Start again, with the environment each replica had before."""
        for name in self.replica_names(service):
            self.revive(name)
        await self.wait_ready(self.replica_names(service))

    def revive(self, name: str) -> None:
        """Start a stopped or killed process again, as it was started before."""
        env, port, role = self._started_as.get(name, ({}, None, "serve"))
        self.start(name, env, port, role)

    def stop(self, name: str, timeout: float = 20.0) -> int | None:
        """Graceful stop (SIGTERM); returns the exit code."""
        process = self.processes.pop(name, None)
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                return process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
        return process.wait()

    def stop_together(self, names: Iterable[str], timeout: float = 20.0) -> dict[str, int | None]:
        """SIGTERM to every process in `names` at once (as an orchestrator stopping a
        deployment would), then wait for each; returns their exit codes."""
        stopping = {name: self.processes.pop(name) for name in names if name in self.processes}
        for process in stopping.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        deadline = time.monotonic() + timeout
        for name, process in stopping.items():
            try:
                codes[name] = process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = process.wait()
        return codes

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown code runs, as when a machine dies."""
        process = self.processes.pop(name, None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        # Last started first: the services let go of their connections to the gateway
        # simulator (started first) before it is asked to stop.
        for name in reversed(list(self.processes)):
            self.stop(name)

    def kill_all(self) -> list[str]:
        """SIGKILL every running process at once; returns their names, for `revive`."""
        victims = [name for name in self.processes if self.is_running(name)]
        for name in victims:
            process = self.processes[name]
            process.kill()
        for name in victims:
            self.processes.pop(name).wait()
        return victims

    def is_running(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    async def wait_ready(self, names: Iterable[str] | None = None, timeout: float = 60.0) -> None:
        """Wait until each process in `names` (default: all of them, every replica)
        answers its readiness check."""
        names = list(names or self.all_names())
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0, verify=self.verify()) as client:
            for name in names:
                path = "/healthz" if name == GATEWAY else "/readyz"
                while True:
                    process = self.processes.get(name)
                    if process is not None and process.poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with {process.returncode}; see {self.log_dir}"
                        )
                    try:
                        response = await client.get(self.url(name) + path)
                        if response.status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{name} not ready after {timeout}s; see {self.log_dir}")
                    await asyncio.sleep(0.2)

    def _log_path(self, name: str) -> Path:
        return self.log_dir / f"{name.replace(':', '-')}.log"

    def logs(self, name: str) -> str:
        """Everything `name` logged in this stack, over all its restarts."""
        path = self._log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def own_logs(self, name: str) -> str:
        """What the latest process started as `name` logged (not its predecessors)."""
        path = self._log_path(name)
        if not path.exists():
            return ""
        with path.open("rb") as handle:
            handle.seek(self._log_offsets.get(name, 0))
            return handle.read().decode(errors="replace")
