"""One trace per order journey: from the HTTP request through every message it causes.

The trace travels in W3C `traceparent` form: an HTTP header on requests, a message
header on everything the outbox publishes. Every log line carries its `trace_id`.
With `OMS_OTEL_ENABLED=true` the same spans are also recorded with OpenTelemetry
and exported (OTLP over HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT`, or to the log with
`OTEL_TRACES_EXPORTER=console`); without it nothing but the ids is kept.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from oms_runtime.logging import log_context

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits: the span now running, the parent of what it causes
    sampled: bool = True

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"


_current: ContextVar[TraceContext | None] = ContextVar("oms_trace", default=None)
_tracer: Any = None  # an OpenTelemetry tracer when enabled


def parse_traceparent(value: object) -> TraceContext | None:
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return TraceContext(match.group(1), match.group(2), int(match.group(3), 16) & 1 == 1)


def _random_hex(bits: int) -> str:
    # Ids need to be unique, not secret: the process-wide PRNG saves the system
    # call secrets.token_hex makes, on every message handled. Never all zeros
    # (an invalid id in W3C trace context).
    return f"{random.getrandbits(bits) or 1:0{bits // 4}x}"


def current() -> TraceContext | None:
    return _current.get()


def outgoing_traceparent() -> str:
    """For a message sent now: the running span as its parent (a new trace if none)."""
    context = _current.get() or TraceContext(_random_hex(128), _random_hex(64))
    return context.traceparent


@contextmanager
def span(name: str, parent: TraceContext | None, **attributes: Any) -> Iterator[TraceContext]:
    """Run the block as a span, child of `parent` (a remote caller or message), or
    the start of a new trace."""
    if _tracer is not None:
        with _otel_span(name, parent, attributes) as recorded, _Running(recorded) as context:
            yield context
        return
    with _Running(
        TraceContext(
            parent.trace_id if parent else _random_hex(128),
            _random_hex(64),
            parent.sampled if parent else True,
        )
    ) as context:
        yield context


class _Running:
    """Makes `context` the running span, and its trace id part of the log context."""

    __slots__ = ("_context", "_logging", "_token")

    def __init__(self, context: TraceContext) -> None:
        self._context = context
        self._logging = log_context(trace_id=context.trace_id)

    def __enter__(self) -> TraceContext:
        self._token = _current.set(self._context)
        self._logging.__enter__()
        return self._context

    def __exit__(self, *exc_info: Any) -> None:
        self._logging.__exit__(*exc_info)
        _current.reset(self._token)


@contextmanager
def _otel_span(
    name: str, parent: TraceContext | None, attributes: dict[str, Any]
) -> Iterator[TraceContext]:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    otel_parent = None
    if parent is not None:
        remote = SpanContext(
            int(parent.trace_id, 16),
            int(parent.span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED if parent.sampled else 0),
        )
        otel_parent = trace.set_span_in_context(NonRecordingSpan(remote))
    with _tracer.start_as_current_span(
        name, context=otel_parent, attributes={k: str(v) for k, v in attributes.items()}
    ) as otel_span:
        ids = otel_span.get_span_context()
        yield TraceContext(
            f"{ids.trace_id:032x}",
            f"{ids.span_id:016x}",
            bool(ids.trace_flags & TraceFlags.SAMPLED),
        )


def configure(service: str, enabled: bool) -> None:
    """Switch OpenTelemetry on for this process (once, at start-up)."""
    global _tracer
    if not enabled:
        _tracer = None
        return
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    provider = TracerProvider(resource=Resource.create({"service.name": f"oms-{service}"}))
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp") == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _tracer = trace.get_tracer("oms")
