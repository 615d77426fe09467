"""Prometheus metrics shared by every service (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUEST_SECONDS = Histogram(
    "oms_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
MESSAGES_CONSUMED = Counter("oms_messages_consumed_total", "Messages handled", ["type", "outcome"])
MESSAGE_HANDLING_SECONDS = Histogram(
    "oms_message_handling_seconds",
    "Time to handle one message (transaction included)",
    ["type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
MESSAGES_PUBLISHED = Counter(
    "oms_messages_published_total", "Messages confirmed by the broker", ["type"]
)
OUTBOX_LAG_SECONDS = Gauge(
    "oms_outbox_oldest_pending_seconds", "Age of the oldest unpublished outbox row"
)
QUEUE_DEPTH = Gauge(
    "oms_queue_depth", "Messages ready in a queue, as the broker counts them", ["queue"]
)
SAGA_STEP_SECONDS = Histogram(
    "oms_saga_step_seconds",
    "Time an order spent in a status before moving to the next",
    ["status", "next_status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
)
SAGA_OUTCOMES = Counter(
    "oms_saga_outcomes_total", "Orders reaching an end state", ["status", "reason"]
)
OPEN_SAGAS = Gauge("oms_open_sagas", "Orders not in an end state, by status", ["status"])
