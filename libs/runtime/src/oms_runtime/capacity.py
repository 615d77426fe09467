"""The capacity model of the design: queueing formulas and the measurements they need.

Everything here is pure (no I/O, no threads): the consumer feeds a `QueueStatistics`
from its event loop, and `queue_report` turns a snapshot of it, plus what the broker
says about the queue, into the figures ops size replicas with.

Notation: lambda is the arrival rate (messages/s), S the mean service time (s),
c the number of servers (consumers), a = lambda * S the offered load (erlangs) and
rho = a / c the utilisation of each server. A queue is stable only if rho < 1;
for rho >= 1 the waiting line grows without bound, so every figure that would be
infinite is reported as None (JSON null) instead of dividing by zero.

A service's consumer takes the messages it has in hand in batches (one shared
transaction each, see oms_runtime.messaging.consumer) and falls back to handling a
failed batch's messages concurrently, so it is not a plain one-at-a-time server,
and summing per-message wall-clock times could count overlapping messages twice.
S is therefore the consumer's *busy time* per message: the time during which it had
at least one message in hand, divided by the messages it handled (a batch's time is
split evenly over its messages). For one-at-a-time handling that is exactly the
mean handling time; in general it is what one message costs the consumer, and
rho = lambda * S is the fraction of time it was busy. The mean wall-clock handling
time is reported next to it.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

# -- formulas ------------------------------------------------------------------------


def utilisation(arrival_rate: float, service_time: float, servers: int = 1) -> float:
    """rho = lambda * S / c: the fraction of time each of `servers` is busy."""
    if servers < 1:
        raise ValueError("servers must be at least 1")
    _check_non_negative(arrival_rate=arrival_rate, service_time=service_time)
    return arrival_rate * service_time / servers


def mm1_queue_length(rho: float) -> float | None:
    """Mean number waiting (not in service) in an M/M/1 queue: rho^2 / (1 - rho).

    None when rho >= 1: the queue grows without bound.
    """
    _check_non_negative(rho=rho)
    if rho >= 1.0:
        return None
    return rho * rho / (1.0 - rho)


def erlang_c(offered_load: float, servers: int) -> float:
    """Probability that an arrival has to wait, M/M/c with offered load a = lambda * S.

    Computed through the Erlang B recursion B(k) = a B(k-1) / (k + a B(k-1)),
    C = c B / (c - a (1 - B)), which needs no factorials and cannot overflow for
    large c. When a >= c every arrival eventually waits: 1.0.
    """
    if servers < 1:
        raise ValueError("servers must be at least 1")
    _check_non_negative(offered_load=offered_load)
    if offered_load == 0.0:
        return 0.0
    if offered_load >= servers:
        return 1.0
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    return servers * blocking / (servers - offered_load * (1.0 - blocking))


def mmc_queue_length(offered_load: float, servers: int) -> float | None:
    """Mean number waiting in an M/M/c queue: L_q = C(c, a) * rho / (1 - rho).

    For c = 1 this is rho^2 / (1 - rho), since C(1, a) = rho. None when unstable.
    """
    if servers < 1:
        raise ValueError("servers must be at least 1")
    rho = offered_load / servers
    if rho >= 1.0:
        return None
    return erlang_c(offered_load, servers) * rho / (1.0 - rho)


def mmc_waiting_time(arrival_rate: float, service_time: float, servers: int) -> float | None:
    """Mean time a message waits before service in an M/M/c queue, in seconds:
    W_q = C(c, a) * S / (c - a) (= L_q / lambda by Little's law). None when unstable."""
    if servers < 1:
        raise ValueError("servers must be at least 1")
    _check_non_negative(arrival_rate=arrival_rate, service_time=service_time)
    offered_load = arrival_rate * service_time
    if offered_load >= servers:
        return None
    return erlang_c(offered_load, servers) * service_time / (servers - offered_load)


def replicas_needed(arrival_rate: float, service_time: float, target_utilisation: float) -> int:
    """The smallest c >= 1 with lambda * S / c <= target and lambda * S / c < 1.

    The second condition only matters for a target of 1.0: a server busy all the
    time has an unbounded queue, so it never counts as enough.
    """
    if not 0.0 < target_utilisation <= 1.0:
        raise ValueError("target_utilisation must be in (0, 1]")
    _check_non_negative(arrival_rate=arrival_rate, service_time=service_time)
    offered_load = arrival_rate * service_time
    # The epsilon keeps a load sitting exactly on a multiple of the target (1.4 / 0.7)
    # from needing one server more because of floating-point noise.
    servers = max(1, math.ceil(offered_load / target_utilisation - 1e-9))
    while offered_load / servers >= 1.0:
        servers += 1
    return servers


def _check_non_negative(**values: float) -> None:
    for name, value in values.items():
        if value < 0 or math.isnan(value):
            raise ValueError(f"{name} must be a non-negative number, got {value}")


# -- measurements --------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSnapshot:
    """What a consumer measured over the last `window_seconds`."""

    window_seconds: float
    messages: int
    arrival_rate: float
    """lambda: messages handled per second. Equals the arrival rate while the queue
    keeps up; when it does not, the observed depth grows and this is the capacity."""
    mean_service_time: float
    """S: busy time per message, in seconds (see the module docstring)."""
    mean_handling_time: float
    """Mean wall-clock time from taking a message to acknowledging it, in seconds."""
    busy_fraction: float
    """Share of the window during which at least one message was in hand."""


class QueueStatistics:
    """Sliding-window record of the messages one consumer handled.

    Counts and handling times go into fixed-width time buckets, so memory is
    bounded by window / resolution. Busy time is the union of the handling
    intervals [now - service_seconds, now]; since they are recorded as they end,
    in order, merging is amortised O(1) and only the disjoint busy periods that
    overlap the window are kept. Not thread-safe and needs no locks: it is meant
    to be called from one event loop.
    """

    def __init__(
        self,
        window_seconds: float = 60.0,
        resolution_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window_seconds <= 0 or resolution_seconds <= 0:
            raise ValueError("window_seconds and resolution_seconds must be positive")
        self.window_seconds = window_seconds
        self._resolution = resolution_seconds
        self._clock = clock
        self._started = clock()
        # (bucket index, messages, sum of handling times); oldest first.
        self._buckets: deque[list[float]] = deque()
        # Disjoint busy periods (start, end), oldest first, ends non-decreasing.
        self._busy: deque[tuple[float, float]] = deque()

    def record(self, service_seconds: float, now: float | None = None) -> None:
        """One message was handled, taking `service_seconds` and ending at `now`.

        `now` must not go backwards between calls (a monotonic clock).
        """
        now = self._clock() if now is None else now
        service_seconds = max(0.0, service_seconds)
        index = math.floor(now / self._resolution)
        if self._buckets and self._buckets[-1][0] == index:
            bucket = self._buckets[-1]
            bucket[1] += 1
            bucket[2] += service_seconds
        else:
            self._buckets.append([index, 1, service_seconds])
        start = now - service_seconds
        while self._busy and self._busy[-1][1] >= start:
            start = min(start, self._busy.pop()[0])
        self._busy.append((start, now))
        self._prune(now)

    def snapshot(
        self, now: float | None = None, window_seconds: float | None = None
    ) -> QueueSnapshot:
        """The figures over the last `window_seconds` (at most the tracked window),
        or since the tracker was created if that is shorter."""
        now = self._clock() if now is None else now
        window = min(window_seconds or self.window_seconds, self.window_seconds)
        self._prune(now)
        since = max(now - window, self._started)
        span = max(0.0, now - since)
        first_bucket = math.floor(since / self._resolution)
        messages = 0
        handling = 0.0
        for index, count, total in self._buckets:
            if index >= first_bucket:
                messages += int(count)
                handling += total
        busy = sum(max(0.0, min(end, now) - max(start, since)) for start, end in self._busy)
        busy = min(busy, span)
        return QueueSnapshot(
            window_seconds=span,
            messages=messages,
            arrival_rate=messages / span if span > 0 else 0.0,
            mean_service_time=busy / messages if messages else 0.0,
            mean_handling_time=handling / messages if messages else 0.0,
            busy_fraction=busy / span if span > 0 else 0.0,
        )

    def _prune(self, now: float) -> None:
        oldest = now - self.window_seconds
        first_bucket = math.floor(oldest / self._resolution)
        while self._buckets and self._buckets[0][0] < first_bucket:
            self._buckets.popleft()
        while self._busy and self._busy[0][1] < oldest:
            self._busy.popleft()


# -- the report ----------------------------------------------------------------------


@dataclass(frozen=True)
class QueueReport:
    """One row of the capacity report: measured, predicted and observed side by side."""

    queue: str
    window_seconds: float
    messages: int
    consumers: int
    arrival_rate: float
    """lambda for the whole queue: this consumer's rate times the consumers."""
    mean_service_time: float
    mean_handling_time: float
    utilisation: float
    """rho = lambda * S / c."""
    stable: bool
    predicted_queue_length_mm1: float | None
    """L_q = rho1^2 / (1 - rho1) with rho1 = lambda * S: everything on one consumer."""
    predicted_queue_length: float | None
    """M/M/c L_q for the actual number of consumers."""
    predicted_wait_seconds: float | None
    """M/M/c W_q for the actual number of consumers."""
    probability_of_waiting: float
    """Erlang C for the actual number of consumers (1.0 when unstable)."""
    observed_depth: int | None
    """Messages ready in the broker queue (not yet delivered to any consumer)."""
    in_flight: int | None
    """Messages this consumer holds (delivered, not yet acknowledged)."""
    target_utilisation: float
    replicas_needed: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def queue_report(
    queue: str,
    snapshot: QueueSnapshot,
    observed_depth: int | None,
    consumers: int,
    target_utilisation: float = 0.7,
    in_flight: int | None = None,
) -> QueueReport:
    """Build the report row of one queue.

    `snapshot` is one consumer's view; the broker spreads messages over the
    `consumers` competing for the queue, so the queue's arrival rate is taken as
    this consumer's times their number. With no consumer attached (0), the
    figures are those of the one that measured.
    """
    servers = max(1, consumers)
    arrival_rate = snapshot.arrival_rate * servers
    service_time = snapshot.mean_service_time
    offered_load = arrival_rate * service_time
    rho = utilisation(arrival_rate, service_time, servers)
    stable = rho < 1.0
    return QueueReport(
        queue=queue,
        window_seconds=snapshot.window_seconds,
        messages=snapshot.messages,
        consumers=consumers,
        arrival_rate=arrival_rate,
        mean_service_time=service_time,
        mean_handling_time=snapshot.mean_handling_time,
        utilisation=rho,
        stable=stable,
        predicted_queue_length_mm1=mm1_queue_length(offered_load),
        predicted_queue_length=mmc_queue_length(offered_load, servers),
        predicted_wait_seconds=mmc_waiting_time(arrival_rate, service_time, servers),
        probability_of_waiting=erlang_c(offered_load, servers),
        observed_depth=observed_depth,
        in_flight=in_flight,
        target_utilisation=target_utilisation,
        replicas_needed=replicas_needed(arrival_rate, service_time, target_utilisation),
    )
