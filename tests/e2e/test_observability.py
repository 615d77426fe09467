"""What ops see: one trace id from the HTTP request through every message, in the
logs of every service; OpenTelemetry spans when switched on; saga metrics."""

from __future__ import annotations

import json
import re
import secrets

import httpx
import pytest

from oms_devtools.client import OmsClient, order_body
from oms_devtools.stack import Stack
from oms_runtime.tracing import parse_traceparent

from .helpers import EventRecorder

pytestmark = pytest.mark.e2e


async def place_traced_order(oms: OmsClient, sku: str) -> tuple[str, httpx.Response]:
    """An order placed by a caller that is itself part of a trace; its trace id."""
    trace_id = secrets.token_hex(16)
    response = await oms.post_order(
        order_body([(sku, 1)]),
        headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
    )
    assert response.status_code == 202, response.text
    return trace_id, response


async def test_the_callers_trace_follows_the_order_through_every_message_and_log(
    oms: OmsClient, stack: Stack, event_recorder: EventRecorder
) -> None:
    product = await oms.create_product(on_hand=5)
    trace_id, response = await place_traced_order(oms, product["sku"])
    order_id = response.json()["id"]
    answered = parse_traceparent(response.headers["traceparent"])
    assert answered is not None and answered.trace_id == trace_id
    await oms.wait_for_order(order_id, "fulfilling")

    mine = [
        (key, parse_traceparent(tp))
        for key, correlation, tp in event_recorder.traces
        if correlation == order_id
    ]
    assert {
        "order.created",
        "inventory.stock_reserved",
        "payment.authorized",
        "shipping.shipment_created",
    } <= {key for key, _ in mine}
    assert {context.trace_id if context else None for _, context in mine} == {trace_id}

    for service in ("order", "inventory", "payment", "shipping"):
        logs = "".join(stack.logs(name) for name in stack.replica_names(service))
        lines = [
            json.loads(line)
            for line in logs.splitlines()
            if line.startswith("{") and order_id in line
        ]
        assert any(line.get("trace_id") == trace_id for line in lines), service


async def test_opentelemetry_spans_are_recorded_when_switched_on(
    oms: OmsClient, stack: Stack
) -> None:
    otel = {"OMS_OTEL_ENABLED": "true", "OTEL_TRACES_EXPORTER": "console"}
    async with stack.restarted_with("inventory", otel):
        product = await oms.create_product(on_hand=5)
        trace_id, response = await place_traced_order(oms, product["sku"])
        await oms.wait_for_order(response.json()["id"], "fulfilling")
    logs = "".join(stack.logs(name) for name in stack.replica_names("inventory"))
    assert f'"trace_id": "0x{trace_id}"' in logs  # the console exporter's span dump
    # One span per message handled (the outcome logged after the commit is not one).
    handled = re.findall(
        r'"name": "handle inventory\.reserve_stock",\s*"context": \{\s*"trace_id": "0x(\w+)"',
        logs,
    )
    assert handled.count(trace_id) == 1


async def test_metrics_show_saga_steps_outcomes_open_sagas_queues_and_outbox_lag(
    oms: OmsClient, stack: Stack
) -> None:
    product = await oms.create_product(on_hand=5)
    order = await oms.place([(product["sku"], 1)], token="tok_declined")
    await oms.wait_for_order(order["id"], "cancelled")
    # Each replica counts what it handled: read them all.
    text = "".join(
        [
            (await oms.http.get(f"{stack.url(name)}/metrics")).text
            for name in stack.replica_names("order")
        ]
    )
    assert 'oms_saga_step_seconds_count{next_status="awaiting_payment",status="pending"}' in text
    assert 'oms_saga_outcomes_total{reason="payment_declined",status="cancelled"}' in text
    assert 'oms_open_sagas{status="pending"}' in text
    assert 'oms_queue_depth{queue="oms.order"}' in text
    assert 'oms_queue_depth{queue="oms.order.dead"}' in text
    assert "oms_outbox_oldest_pending_seconds" in text
    assert 'oms_messages_consumed_total{outcome="handled",type="inventory.stock_reserved"}' in text
    assert 'oms_messages_published_total{type="inventory.reserve_stock"}' in text
    assert "oms_http_request_duration_seconds_bucket" in text
