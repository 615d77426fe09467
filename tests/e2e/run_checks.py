"""What every end-to-end run must leave true, whatever its tests did: each event the
services published matches its published schema, and the books of the services agree
with one another. tests/e2e/conftest.py checks both when a process's session ends
(each pytest-xdist worker runs a stack of its own); test_event_contracts.py and
test_invariants.py check them on orders of their own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import asyncpg
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from oms_contracts import Envelope
from oms_contracts.catalog import published_schema
from oms_devtools.client import OmsClient, eventually

from .helpers import stock_books_disagreements

TERMINAL = ("completed", "rejected", "cancelled")


async def agree_once_settled(
    check: Callable[[], Awaitable[list[str]]], what: str, seconds: float
) -> None:
    """`check` finds nothing wrong within `seconds` (messages may still be in flight)."""
    await eventually(check, lambda found: found == [], seconds, what)


# -- events against the published catalog ------------------------------------------------


def order_id_of(body: bytes) -> object:
    try:
        return Envelope.model_validate_json(body).data.get("order_id")
    except ValidationError:
        return None  # reported by contract_violations


def contract_violations(events: Iterable[tuple[str, bytes]]) -> list[str]:
    """Why each (routing key, body) would surprise a subscriber trusting the catalog."""
    violations = []
    validators: dict[tuple[str, int], Draft202012Validator | None] = {}
    for routing_key, body in events:
        try:
            envelope = Envelope.model_validate_json(body)
        except ValidationError as exc:
            violations.append(f"{routing_key}: not an envelope: {exc}")
            continue
        where = f"{envelope.type} v{envelope.version} ({envelope.message_id})"
        if envelope.type != routing_key:
            violations.append(f"{where}: published with routing key {routing_key}")
        key = (envelope.type, envelope.version)
        if key not in validators:
            schema = published_schema(*key)
            validators[key] = Draft202012Validator(schema) if schema else None
        validator = validators[key]
        if validator is None:
            violations.append(f"{where}: no published schema")
            continue
        if validator.schema["x-oms-kind"] != "event":
            violations.append(f"{where}: a command on the events exchange")
        violations += [
            f"{where}: {error.json_path}: {error.message}"
            for error in validator.iter_errors(envelope.data)
        ]
    return violations


# -- the books across the services -------------------------------------------------------


async def terminal_orders(db: asyncpg.Connection) -> list[str]:
    """Orders that ended, less those an operator forced a compensation of (who took
    responsibility for them by hand)."""
    rows = await db.fetch(
        "SELECT id::text FROM orders.orders o WHERE status = ANY($1::text[]) "
        "AND NOT EXISTS (SELECT 1 FROM orders.order_history h "
        "                WHERE h.order_id = o.id AND h.step = 'compensation_forced')",
        list(TERMINAL),
    )
    return [row["id"] for row in rows]


async def held_for_ended_orders(db: asyncpg.Connection, oms: OmsClient) -> list[str]:
    """Stock still reserved, payments still authorized, or gateway holds still open for
    an order that ended."""
    terminal = await terminal_orders(db)
    found = [
        f"order {row['order_id']}: stock still reserved"
        for row in await db.fetch(
            "SELECT order_id FROM inventory.reservations "
            "WHERE status = 'reserved' AND order_id = ANY($1::text[])",
            terminal,
        )
    ]
    payments = await db.fetch(
        "SELECT order_id, id::text, status FROM payment.payments WHERE order_id = ANY($1::text[])",
        terminal,
    )
    for payment in payments:
        where = f"order {payment['order_id']}, payment {payment['id']}"
        if payment["status"] == "authorized":
            found.append(f"{where}: still authorized")
        holds = await oms.gateway_holds(payment["id"])
        found += [
            f"{where}: gateway hold {h['id']} open" for h in holds if h["status"] == "authorized"
        ]
    return found


async def reserved_stock_disagreements(db: asyncpg.Connection) -> list[str]:
    """Per (SKU, location): what open reservations hold there and has not left yet is
    what the stock counts as reserved."""
    rows = await db.fetch("""
        SELECT s.sku, s.location, s.reserved, coalesce(sum(l.quantity), 0) AS held
        FROM inventory.stock s
        LEFT JOIN (
            SELECT line->>'sku' AS sku, line->>'location' AS location,
                   (line->>'quantity')::int AS quantity
            FROM inventory.reservations r, jsonb_array_elements(r.lines) AS line
            WHERE r.status = 'reserved' AND NOT (line->>'committed')::boolean) l
            ON l.sku = s.sku AND l.location = s.location
        GROUP BY s.sku, s.location, s.reserved
        HAVING s.reserved <> coalesce(sum(l.quantity), 0)""")
    return [
        f"{r['sku']} at {r['location']}: {r['reserved']} reserved, {r['held']} held" for r in rows
    ]


async def stock_ledger_disagreements(db: asyncpg.Connection) -> list[str]:
    """The stock at every location equals its ledger, and no movement names a (SKU,
    location) without a stock row."""
    orphans = await db.fetch("""
        SELECT DISTINCT m.sku, m.location FROM inventory.stock_movements m
        WHERE NOT EXISTS (SELECT 1 FROM inventory.stock s
                          WHERE s.sku = m.sku AND s.location = m.location)""")
    return [
        *await stock_books_disagreements(db),
        *(f"{r['sku']} at {r['location']}: movements without stock" for r in orphans),
    ]


async def shipped_unit_disagreements(db: asyncpg.Connection) -> list[str]:
    """Per (SKU, location): a parcel that left is a committed line, whatever became of
    the rest of its order."""
    rows = await db.fetch("""
        WITH ledger AS (
            SELECT sku, location, -sum(on_hand_delta) AS shipped
            FROM inventory.stock_movements WHERE reason = 'ship' GROUP BY sku, location),
        committed AS (
            SELECT line->>'sku' AS sku, line->>'location' AS location,
                   sum((line->>'quantity')::int) AS shipped
            FROM inventory.reservations r, jsonb_array_elements(r.lines) AS line
            WHERE (line->>'committed')::boolean GROUP BY 1, 2)
        SELECT sku, location, ledger.shipped AS left, committed.shipped AS committed
        FROM ledger FULL JOIN committed USING (sku, location)
        WHERE ledger.shipped IS DISTINCT FROM committed.shipped""")
    return [
        f"{r['sku']} at {r['location']}: {r['left']} left, {r['committed']} committed" for r in rows
    ]


async def live_shipment_disagreements(db: asyncpg.Connection) -> list[str]:
    """A shipped order's parcels that left are its live shipments; the others were
    stopped (cancelled) or never made."""
    shipped = await db.fetch("""
        SELECT id::text,
               (SELECT count(*) FROM jsonb_array_elements(fulfillments) AS parcel
                WHERE parcel->>'status' IN ('dispatched', 'delivered')) AS parcels
        FROM orders.orders WHERE status IN ('shipped', 'completed')""")
    live = await db.fetch(
        "SELECT order_id, count(*) AS n FROM shipping.shipments "
        "WHERE order_id = ANY($1::text[]) AND status NOT IN ('cancelled', 'failed') "
        "GROUP BY order_id",
        [row["id"] for row in shipped],
    )
    shipments = {row["order_id"]: row["n"] for row in live}
    found = []
    for row in shipped:
        live_count = shipments.get(row["id"], 0)
        if live_count != row["parcels"] or not row["parcels"]:
            found.append(f"order {row['id']}: {row['parcels']} parcels left, {live_count} live")
    return found


async def books_disagreements(db: asyncpg.Connection, oms: OmsClient) -> list[str]:
    """Every way the services' books disagree right now (empty when they agree)."""
    return [
        *await held_for_ended_orders(db, oms),
        *await reserved_stock_disagreements(db),
        *await stock_ledger_disagreements(db),
        *await shipped_unit_disagreements(db),
        *await live_shipment_disagreements(db),
    ]
