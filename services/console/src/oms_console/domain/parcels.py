"""An order's parcels as staff see them: the order service's fulfillments (one per
stock location, also those still waiting for their dispatch note or cancelled),
each with what shipping knows of its shipment (carrier events, the latest status)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Parcel:
    number: int
    fulfillment_id: str | None
    location: str | None
    items: tuple[tuple[str, int], ...]  # (sku, quantity)
    status: str
    shipment_id: str | None
    carrier: str | None
    tracking_number: str | None
    events: tuple[Mapping[str, Any], ...]


def _lines(rows: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, int], ...]:
    return tuple((str(row["sku"]), int(row["quantity"])) for row in rows)


def parcels_of(order: Mapping[str, Any], shipments: Sequence[Mapping[str, Any]]) -> list[Parcel]:
    """One parcel per fulfillment, in the order's order; a shipment the order does not
    list yet (its news still on the way) is shown too, after them."""
    by_id = {str(s["id"]): s for s in shipments}
    by_fulfillment = {str(s["fulfillment_id"]): s for s in shipments if s.get("fulfillment_id")}
    shown: set[str] = set()
    parcels: list[Parcel] = []
    for fulfillment in order.get("fulfillments") or []:
        shipment = by_id.get(str(fulfillment.get("shipment_id"))) or by_fulfillment.get(
            str(fulfillment.get("id"))
        )
        if shipment is not None:
            shown.add(str(shipment["id"]))
        parcels.append(
            Parcel(
                number=len(parcels) + 1,
                fulfillment_id=fulfillment.get("id"),
                location=fulfillment.get("location"),
                items=_lines(fulfillment.get("items") or []),
                # Shipping knows more (in transit, delivered) than the order heard yet.
                status=str((shipment or fulfillment).get("status") or "pending"),
                shipment_id=str(shipment["id"]) if shipment else fulfillment.get("shipment_id"),
                carrier=(shipment or fulfillment).get("carrier"),
                tracking_number=(shipment or fulfillment).get("tracking_number"),
                events=tuple((shipment or {}).get("events") or ()),
            )
        )
    for shipment in shipments:
        if str(shipment["id"]) in shown:
            continue
        parcels.append(
            Parcel(
                number=len(parcels) + 1,
                fulfillment_id=shipment.get("fulfillment_id"),
                location=shipment.get("location"),
                items=_lines(shipment.get("lines") or []),
                status=str(shipment.get("status") or "created"),
                shipment_id=str(shipment["id"]),
                carrier=shipment.get("carrier"),
                tracking_number=shipment.get("tracking_number"),
                events=tuple(shipment.get("events") or ()),
            )
        )
    return parcels
