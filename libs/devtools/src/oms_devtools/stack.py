"""The whole system as real processes: four services and the gateway simulator.

Used by the end-to-end tests and the benchmark. Each process logs to its own file;
services can be stopped, killed (SIGKILL) and restarted individually.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVICES = ("order", "inventory", "payment", "shipping")
GATEWAY = "gateway"


def free_port_block(size: int, first: int = 20000, last: int = 60000) -> int:
    """The first port of `size` consecutive free ports, picked at random so that two
    stacks (two test runs, a test run and a benchmark) do not collide."""
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


@dataclass
class Stack:
    database_url: str
    amqp_url: str
    log_dir: Path
    base_port: int = 18000
    gateway_port: int = 18090
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def port(self, name: str) -> int:
        if name == GATEWAY:
            return self.gateway_port
        return self.base_port + SERVICES.index(name.split(":")[0])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port(name)}"

    def common_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "OMS_DATABASE_URL": self.database_url,
            "OMS_AMQP_URL": self.amqp_url,
            "OMS_GATEWAY_URL": self.url(GATEWAY),
            "OMS_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }

    def start(
        self, name: str, extra_env: Mapping[str, str] | None = None, port: int | None = None
    ) -> None:
        """Start `name` (a service, or "gateway"). `name` may carry a replica
        suffix ("order:2") when a second copy runs on another `port`."""
        service = name.split(":")[0]
        if service == GATEWAY:
            command = [sys.executable, "-m", "oms_gateway_simulator"]
        else:
            command = [sys.executable, "-m", f"oms_{service}", "serve"]
        command += ["--port", str(port or self.port(name))]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name.replace(':', '-')}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            command,
            env={**self.common_env(), **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_all(self, extra_env: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.start(GATEWAY, (extra_env or {}).get(GATEWAY))
        for service in SERVICES:
            self.start(service, (extra_env or {}).get(service))

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

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown code runs, as when a machine dies."""
        process = self.processes.pop(name, None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def is_running(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    async def wait_ready(self, names: Iterable[str] | None = None, timeout: float = 60.0) -> None:
        names = list(names or [GATEWAY, *SERVICES])
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
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

    def logs(self, name: str) -> str:
        path = self.log_dir / f"{name.replace(':', '-')}.log"
        return path.read_text(errors="replace") if path.exists() else ""
