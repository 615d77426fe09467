"""Was the run correct: every order ended as its kind calls for, stock conserved
with nothing left reserved, captured money equal to what shipped."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from oms_devtools.bench.load import EventListener, Placed
from oms_devtools.client import OmsClient
from oms_runtime.db import libpq_url

EXPECTED = {
    "ok": ("shipped", None),
    "declined": ("cancelled", "payment_declined"),
    "out_of_stock": ("rejected", "out_of_stock"),
}
SETTLED_STATUSES = ("shipped", "completed", "rejected", "cancelled")


@dataclass
class Check:
    name: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


async def _eventually(probe: Any, timeout: float) -> tuple[bool, Any]:
    """Run `probe()` -> (ok, detail) until ok or `timeout`; the last answer wins."""
    deadline = time.perf_counter() + timeout
    while True:
        ok, detail = await probe()
        if ok or time.perf_counter() > deadline:
            return ok, detail
        await asyncio.sleep(0.25)


async def check_correctness(
    database_url: str,
    oms: OmsClient,
    placed: Sequence[Placed],
    listener: EventListener,
    initial_stock: Mapping[str, int],
    timeout: float,
) -> list[Check]:
    checks: list[Check] = []
    errors = [p for p in placed if p.error is not None]
    checks.append(
        Check(
            "every POST was accepted",
            not errors,
            f"{len(errors)} of {len(placed)} failed: {dict(Counter(p.error for p in errors))}"
            if errors
            else f"{len(placed)} accepted",
        )
    )
    accepted = {p.order_id: p for p in placed if p.order_id is not None}
    unsettled_events = [oid for oid in accepted if not listener.is_settled(oid)]
    checks.append(
        Check(
            "every order's final event arrived",
            not unsettled_events,
            f"{len(unsettled_events)} without shipped/rejected/cancelled event"
            if unsettled_events
            else f"{len(accepted)} orders",
        )
    )

    connection = await asyncpg.connect(libpq_url(database_url))
    try:
        rows = await connection.fetch(
            "SELECT id::text AS id, status, status_reason, total FROM orders.orders"
        )
        by_id = {row["id"]: row for row in rows}
        not_settled = Counter(
            row["status"] for row in rows if row["status"] not in SETTLED_STATUSES
        )
        checks.append(
            Check(
                "every order in the database settled",
                not not_settled,
                f"still {dict(not_settled)}" if not_settled else f"{len(rows)} orders",
            )
        )
        unknown = len(set(by_id) - set(accepted))
        mismatched: Counter[str] = Counter()
        for order_id, p in accepted.items():
            row = by_id.get(order_id)
            want_status, want_reason = EXPECTED[p.kind]
            got = (row["status"], row["status_reason"]) if row is not None else ("missing", None)
            status_ok = got[0] == want_status or (
                want_status == "shipped" and got[0] == "completed"
            )
            if not status_ok or (want_reason is not None and got[1] != want_reason):
                mismatched[f"{p.kind} -> {got[0]}/{got[1]}"] += 1
            outcome = listener.outcomes.get(order_id)
            if outcome is not None and outcome.final is not None and outcome.final != want_status:
                mismatched[f"{p.kind} -> event {outcome.final}/{outcome.reason}"] += 1
        detail = (
            f"mismatches {dict(mismatched)}"
            if mismatched
            else "ok -> shipped, declined -> cancelled/payment_declined, "
            "out_of_stock -> rejected/out_of_stock"
        )
        if unknown:
            detail += f"; {unknown} orders in the database unknown to the client (failed POSTs)"
        checks.append(Check("every order ended as its kind calls for", not mismatched, detail))

        async def shipped_units() -> dict[str, int]:
            units = await connection.fetch(
                "SELECT l->>'sku' AS sku, sum((l->>'quantity')::int)::bigint AS units "
                "FROM orders.orders o, jsonb_array_elements(o.lines) AS l "
                "WHERE o.status IN ('shipped', 'completed') GROUP BY 1"
            )
            return {row["sku"]: int(row["units"]) for row in units}

        async def stock_probe() -> tuple[bool, Any]:
            shipped = await shipped_units()
            products = {}
            cursor: str | None = None
            while True:
                params: dict[str, Any] = {"limit": 200}
                if cursor:
                    params["cursor"] = cursor
                response = await oms.http.get(
                    f"{oms.urls['inventory']}/products", params=params, headers=oms.admin()
                )
                response.raise_for_status()
                page = response.json()
                products.update({item["sku"]: item for item in page["items"]})
                cursor = page["next_cursor"]
                if not cursor:
                    break
            wrong = {}
            for sku, initial in initial_stock.items():
                product = products.get(sku)
                want = initial - shipped.get(sku, 0)
                if product is None or product["on_hand"] != want or product["reserved"] != 0:
                    wrong[sku] = {
                        "expected_on_hand": want,
                        "on_hand": product and product["on_hand"],
                        "reserved": product and product["reserved"],
                    }
            return (
                not wrong,
                wrong or f"{len(initial_stock)} SKUs, {sum(shipped.values())} units shipped",
            )

        ok, detail = await _eventually(stock_probe, timeout)
        checks.append(
            Check("stock conserved, nothing left reserved (inventory API)", ok, str(detail))
        )

        async def money_probe() -> tuple[bool, Any]:
            captured = await connection.fetchval(
                "SELECT coalesce(sum(captured_amount), 0) FROM payment.payments"
            )
            owed = await connection.fetchval(
                "SELECT coalesce(sum(total), 0) FROM orders.orders "
                "WHERE status IN ('shipped', 'completed')"
            )
            held = await connection.fetchval(
                "SELECT count(*) FROM payment.payments"
                " WHERE status IN ('authorized', 'partially_captured')"
            )
            detail = f"captured {captured}, shipped orders' totals {owed}, still authorized {held}"
            return captured == owed and held == 0, detail

        ok, detail = await _eventually(money_probe, timeout)
        checks.append(Check("captured money equals the shipped orders' totals", ok, detail))
    finally:
        await connection.close()
    return checks
