"""What a phase measured: latency percentiles, throughput, a per-second timeline,
and the printed summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oms_devtools.bench.cpu import (
    BENCH,
    OTHER_PROCESSES,
    POSTGRES_GATEWAY,
    POSTGRES_REST,
    RABBITMQ,
)
from oms_devtools.bench.load import FINAL_EVENTS, EventListener, Placed
from oms_devtools.procstat import STEAL
from oms_devtools.stack import GATEWAY

# What the system is, for its CPU per order: every process of ours, their Postgres
# backends, RabbitMQ and the kernel's interrupt time. Not the harness (load generator,
# gateway simulator and its database), not the machine's other work, not time the
# hypervisor stole.
NOT_THE_SYSTEM = frozenset(
    {BENCH, GATEWAY, POSTGRES_GATEWAY, OTHER_PROCESSES, POSTGRES_REST, STEAL}
)


def _system_seconds(cpu: Mapping[str, Any]) -> float:
    return sum(
        float(row["cpu_seconds"])
        for name, row in cpu["processes"].items()
        if name not in NOT_THE_SYSTEM
    )


def system_cpu_ms_per_order(cpu: Mapping[str, Any], completed: int) -> float | None:
    if not completed:
        return None
    return round(1000 * _system_seconds(cpu) / completed, 1)


def system_cpu_per_rabbitmq(cpu: Mapping[str, Any]) -> float | None:
    """The system's CPU over RabbitMQ's. An order costs the broker the same messages
    whatever the services' code does, and this VM's speed moves every process's CPU
    together from hour to hour, so this ratio compares versions of the code measured
    at different times where ms per order does not."""
    broker = float(cpu["processes"].get(RABBITMQ, {}).get("cpu_seconds", 0.0))
    return round(_system_seconds(cpu) / broker, 2) if broker > 0 else None


@dataclass
class PhaseRun:
    name: str
    description: str
    duration: float
    offered_rate: float | None
    started: float
    load_ended: float
    settled_at: float
    placed: list[Placed]
    cpu: dict[str, Any]
    capacity: dict[str, Any]


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (as numpy's default)."""
    if not sorted_values:
        raise ValueError("no values")
    position = (len(sorted_values) - 1) * fraction
    lower = int(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    weight = position - lower
    return sorted_values[lower] * (1 - weight) + sorted_values[upper] * weight


def latency_summary(seconds: Iterable[float]) -> dict[str, float | int | None]:
    values = sorted(seconds)
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    return {
        "n": len(values),
        "p50": round(percentile(values, 0.50) * 1000, 2),
        "p95": round(percentile(values, 0.95) * 1000, 2),
        "p99": round(percentile(values, 0.99) * 1000, 2),
        "max": round(values[-1] * 1000, 2),
        "mean": round(sum(values) / len(values) * 1000, 2),
    }


def summarise(phase: PhaseRun, listener: EventListener) -> dict[str, Any]:
    accepted = [p for p in phase.placed if p.order_id is not None]
    errors = Counter(p.error for p in phase.placed if p.error is not None)
    outcomes: Counter[str] = Counter()
    finals_in_window = 0
    last_final = phase.started
    paid, shipped, final, attention = [], [], [], 0
    for p in accepted:
        assert p.order_id is not None
        outcome = listener.outcomes.get(p.order_id)
        if outcome is None or outcome.final is None or outcome.final_at is None:
            outcomes["unsettled"] += 1
            continue
        outcomes[outcome.final] += 1
        if "order.requires_attention" in outcome.seen:
            attention += 1
        final.append(outcome.final_at - p.scheduled)
        last_final = max(last_final, outcome.final_at)
        if outcome.final_at <= phase.started + phase.duration:
            finals_in_window += 1
        if "order.paid" in outcome.seen:
            paid.append(outcome.seen["order.paid"] - p.scheduled)
        if "order.shipped" in outcome.seen:
            shipped.append(outcome.seen["order.shipped"] - p.scheduled)
    window = phase.duration
    settled = sum(outcomes[name] for name in FINAL_EVENTS.values())
    drain = max(0.0, last_final - (phase.started + phase.duration))
    lag = [p.started - p.scheduled for p in phase.placed]
    return {
        "name": phase.name,
        "description": phase.description,
        "duration_seconds": round(window, 2),
        "offered_rate": phase.offered_rate,
        "sent": len(phase.placed),
        "sent_per_second": round(len(phase.placed) / window, 1) if window else 0.0,
        "accepted": len(accepted),
        "errors": sum(errors.values()),
        "errors_by_kind": dict(errors),
        "kinds": dict(Counter(p.kind for p in phase.placed)),
        "outcomes": {
            **{name: outcomes[name] for name in FINAL_EVENTS.values()},
            "unsettled": outcomes["unsettled"],
        },
        "requires_attention_seen": attention,
        "completed_per_second": round(finals_in_window / window, 1) if window else 0.0,
        "completed_per_second_incl_drain": round(settled / (last_final - phase.started), 1)
        if settled and last_final > phase.started
        else 0.0,
        "drain_seconds": round(drain, 2),
        "latency_ms": {
            "post": latency_summary(p.post_seconds for p in accepted if p.post_seconds is not None),
            "post_to_paid": latency_summary(paid),
            "post_to_shipped": latency_summary(shipped),
            "post_to_final": latency_summary(final),
            "send_lag": latency_summary(lag),
        },
        "timeline": timeline(phase, listener),
        "cpu": phase.cpu,
        "system_cpu_ms_per_order": system_cpu_ms_per_order(phase.cpu, settled),
        "system_cpu_per_rabbitmq": system_cpu_per_rabbitmq(phase.cpu),
        "capacity": phase.capacity,
    }


def timeline(phase: PhaseRun, listener: EventListener) -> list[dict[str, Any]]:
    """Per second of the phase (drain included): orders due, POST latency of those,
    and orders that reached their final outcome in that second. Shows when a queue
    starts to build, which the percentiles of the whole phase hide."""
    due: dict[int, list[Placed]] = {}
    for p in phase.placed:
        due.setdefault(int(p.scheduled - phase.started), []).append(p)
    finals: Counter[int] = Counter()
    for p in phase.placed:
        outcome = listener.outcomes.get(p.order_id) if p.order_id else None
        if outcome is not None and outcome.final_at is not None:
            finals[int(outcome.final_at - phase.started)] += 1
    seconds = max([*due, *finals], default=-1) + 1
    rows = []
    for second in range(seconds):
        placed = due.get(second, [])
        post = latency_summary(
            p.post_seconds for p in placed if p.order_id is not None and p.post_seconds is not None
        )
        rows.append(
            {
                "second": second,
                "sent": len(placed),
                "errors": sum(1 for p in placed if p.error is not None),
                "post_p50_ms": post["p50"],
                "post_max_ms": post["max"],
                "completed": finals[second],
            }
        )
    return rows


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_phase(summary: Mapping[str, Any]) -> str:
    lines = [
        f"== {summary['name']}: {summary['description']}",
        f"   sent {summary['sent']} ({summary['sent_per_second']}/s), accepted "
        f"{summary['accepted']}, errors {summary['errors']} {summary['errors_by_kind'] or ''}",
        f"   completed {summary['completed_per_second']} orders/s during the load "
        f"({summary['completed_per_second_incl_drain']}/s counting the "
        f"{summary['drain_seconds']} s drain)",
        "   outcomes " + ", ".join(f"{k} {v}" for k, v in summary["outcomes"].items()),
        f"   {'latency (ms)':<22}{'n':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}",
    ]
    names = {
        "post": "POST /orders",
        "post_to_paid": "POST -> paid",
        "post_to_shipped": "POST -> shipped",
        "post_to_final": "POST -> final outcome",
        "send_lag": "load generator lag",
    }
    for key, title in names.items():
        stats = summary["latency_ms"][key]
        lines.append(
            f"   {title:<22}{stats['n']:>7}{_ms(stats['p50']):>9}{_ms(stats['p95']):>9}"
            f"{_ms(stats['p99']):>9}{_ms(stats['max']):>9}"
        )
    cpu = summary["cpu"]
    lines.append(
        f"   CPU over {cpu['wall_seconds']} s on {cpu['cores']} cores "
        f"(machine {cpu['machine_busy_percent']}% busy)"
    )
    settled = sum(summary["outcomes"][name] for name in FINAL_EVENTS.values())
    lines.append(f"   {'process':<46}{'cpu s':>9}{'% core':>9}{'% machine':>11}{'ms/order':>10}")
    for name, row in sorted(
        cpu["processes"].items(), key=lambda item: -float(item[1]["cpu_seconds"])
    ):
        per_order = 1000 * float(row["cpu_seconds"]) / settled if settled else 0.0
        lines.append(
            f"   {name:<46}{row['cpu_seconds']:>9.2f}{row['percent_of_one_core']:>9.1f}"
            f"{row['percent_of_machine']:>11.1f}{per_order:>10.2f}"
        )
    lines.append(
        f"   system CPU per completed order (services, their Postgres backends, RabbitMQ, "
        f"kernel; not the load generator or the gateway simulator): "
        f"{_ms(summary.get('system_cpu_ms_per_order'))} ms"
    )
    ratio = summary.get("system_cpu_per_rabbitmq")
    if ratio is not None:
        lines.append(
            f"   system CPU / RabbitMQ's (compares, across the VM's speed changes, versions "
            f"that send the broker the same frames per order): {ratio}"
        )
    return "\n".join(lines)
