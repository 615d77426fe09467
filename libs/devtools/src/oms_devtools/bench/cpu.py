"""Who spent the machine's CPU during a phase: each process of the stack, Postgres,
RabbitMQ, the load generator, the kernel."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from typing import Any

from oms_devtools.procstat import KERNEL, STEAL, ProcStat, cmdline, machine_seconds, read_proc_stats
from oms_devtools.stack import Stack

BENCH = "bench (load generator)"
POSTGRES_OURS = "postgres: bench database backends"
POSTGRES_REST = "postgres: other (background, other databases)"
POSTGRES_GATEWAY = "postgres: the gateway simulator's database"
# The simulator's database is the bench database's name with this suffix.
GATEWAY_DATABASE_SUFFIX = "_gateway"
RABBITMQ = "rabbitmq"
OTHER_PROCESSES = "other processes"


class CpuMeter:
    """CPU seconds per group of processes, accumulated per pid by polling /proc.

    A one-off before/after difference would lose every process that exits in
    between (Postgres backends of closed pool connections, for one), so the meter
    polls and adds each pid's increments; a process that exits loses at most its
    last poll interval. Groups: each stack process (with its children), the
    Postgres backends of the bench database, those of the gateway simulator's, the
    rest of Postgres, RabbitMQ, the
    bench itself, and everything else; the kernel's interrupt time and the time
    the hypervisor stole come from /proc/stat, as they belong to no process.
    """

    def __init__(self, stack: Stack, database_name: str, interval: float = 1.0) -> None:
        self._stack = stack
        self._database_marker = f" {database_name} "
        self._gateway_marker = f" {database_name}{GATEWAY_DATABASE_SUFFIX} "
        self._interval = interval
        self._seen: dict[int, tuple[str, float]] = {}
        self.totals: dict[str, float] = {}
        self._machine_start = machine_seconds()
        self._task: asyncio.Task[None] | None = None

    def _group(self, stat: ProcStat, by_pid: Mapping[int, ProcStat]) -> str:
        roots = {process.pid: name for name, process in self._stack.processes.items()}
        ancestor: ProcStat | None = stat
        for _ in range(64):  # bounded walk up the parent chain
            if ancestor is None:
                break
            if ancestor.pid in roots:
                return roots[ancestor.pid]
            if ancestor.pid == os.getpid():
                return BENCH
            ancestor = by_pid.get(ancestor.ppid)
        if stat.comm == "postgres":
            title = cmdline(stat.pid)
            if self._database_marker in title:
                return POSTGRES_OURS
            return POSTGRES_GATEWAY if self._gateway_marker in title else POSTGRES_REST
        if stat.comm == "beam.smp":
            return RABBITMQ
        return OTHER_PROCESSES

    def poll(self) -> None:
        stats = read_proc_stats()
        by_pid = {stat.pid: stat for stat in stats}
        for stat in stats:
            known = self._seen.get(stat.pid)
            if known is None or known[0] == POSTGRES_REST:
                # A new backend may not have set its title yet: ask again later.
                group = self._group(stat, by_pid)
                previous = known[1] if known is not None else stat.cpu_seconds
                # A pid first seen counts from now: its earlier CPU was before the run.
            else:
                group, previous = known
            self.totals[group] = self.totals.get(group, 0.0) + max(0.0, stat.cpu_seconds - previous)
            self._seen[stat.pid] = (group, stat.cpu_seconds)
        for pid in set(self._seen) - set(by_pid):
            del self._seen[pid]

    def sample(self) -> dict[str, float]:
        """Cumulative seconds per group and of the machine, for `cpu_split`."""
        self.poll()
        machine = machine_seconds()
        return {
            **self.totals,
            **{
                f"machine {kind}": seconds - self._machine_start[kind]
                for kind, seconds in machine.items()
            },
        }

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.poll()

    def start(self) -> None:
        self.poll()
        self._task = asyncio.create_task(self.run(), name="cpu-meter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def cpu_split(
    before: Mapping[str, float], after: Mapping[str, float], wall: float
) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    capacity = wall * cores

    def row(seconds: float) -> dict[str, float]:
        return {
            "cpu_seconds": round(seconds, 2),
            "percent_of_one_core": round(100 * seconds / wall, 1) if wall else 0.0,
            "percent_of_machine": round(100 * seconds / capacity, 1) if capacity else 0.0,
        }

    def delta(name: str) -> float:
        return max(0.0, after.get(name, 0.0) - before.get(name, 0.0))

    groups = [name for name in after if not name.startswith("machine ")]
    rows = {name: row(delta(name)) for name in groups}
    for kind in (KERNEL, STEAL):
        rows[kind] = row(delta(f"machine {kind}"))
    idle = delta("machine idle")
    return {
        "wall_seconds": round(wall, 2),
        "cores": cores,
        "machine_busy_percent": round(100 * (1 - idle / capacity), 1) if capacity else 0.0,
        "processes": rows,
    }
