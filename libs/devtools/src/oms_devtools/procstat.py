"""CPU seconds per process and of the whole machine, read from /proc (Linux)."""

from __future__ import annotations

import os
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KERNEL = "kernel (irq, softirq)"
STEAL = "stolen by the hypervisor"


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    comm: str
    cpu_seconds: float


def read_proc_stats() -> list[ProcStat]:
    stats = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                raw = handle.read().decode(errors="replace")
        except OSError:  # it exited meanwhile
            continue
        # comm is in parentheses and may itself contain spaces or parentheses.
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # utime and stime (fields 14 and 15 of stat(5)) are at 11 and 12 after comm.
        ticks = int(fields[11]) + int(fields[12])
        stats.append(ProcStat(int(entry.name), int(fields[1]), comm, ticks / CLOCK_TICKS))
    return stats


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def machine_seconds() -> dict[str, float]:
    """CPU seconds of the whole machine since boot, by kind."""
    with open("/proc/stat") as handle:
        user, nice, system, idle, iowait, irq, softirq, steal = (
            int(value) / CLOCK_TICKS for value in handle.readline().split()[1:9]
        )
    return {
        "processes": user + nice + system,
        KERNEL: irq + softirq,
        STEAL: steal,
        "idle": idle + iowait,
    }
