"""The warehouse's receive form: per announced line, how many units arrived
resellable and how many damaged (one SKU may arrive in both states). Shipping has
the last word; this turns what was typed into its request, or into a message
that names the line at fault."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CONDITIONS = ("resellable", "damaged")
_ITEM_FIELD = re.compile(r"^items\[(\d+)\]\.?(.*)$")


class ReceiveFormError(ValueError):
    """What was typed cannot be received; the message says which line and why."""


@dataclass(frozen=True)
class AnnouncedLine:
    """What a return announced of one SKU (from one or more locations)."""

    sku: str
    quantity: int
    locations: tuple[str, ...]


def announced_lines(items: Sequence[dict[str, Any]]) -> list[AnnouncedLine]:
    """The return's lines per SKU, in the order announced: the form counts a SKU
    once, however many parcels it left in."""
    quantities: dict[str, int] = {}
    locations: dict[str, list[str]] = {}
    for item in items:
        sku = str(item["sku"])
        quantities[sku] = quantities.get(sku, 0) + int(item["quantity"])
        where = locations.setdefault(sku, [])
        if item.get("location") and item["location"] not in where:
            where.append(str(item["location"]))
    return [AnnouncedLine(sku, quantities[sku], tuple(locations[sku])) for sku in quantities]


@dataclass(frozen=True)
class CountedLine:
    """One announced line of a return, and what staff typed for it."""

    sku: str
    announced: int
    resellable: str
    damaged: str


def _count(text: str, sku: str, condition: str, announced: int) -> int:
    text = text.strip()
    if not text:
        return 0
    if not text.isdigit() or int(text) > announced:
        raise ReceiveFormError(f"{sku}, {condition}: give a whole number from 0 to {announced}.")
    return int(text)


def received_items(lines: Sequence[CountedLine]) -> list[dict[str, Any]]:
    """The body's `items`: one entry per SKU and condition that arrived."""
    items: list[dict[str, Any]] = []
    for line in lines:
        counts = {
            "resellable": _count(line.resellable, line.sku, "resellable", line.announced),
            "damaged": _count(line.damaged, line.sku, "damaged", line.announced),
        }
        if sum(counts.values()) > line.announced:
            raise ReceiveFormError(
                f"{line.sku}: {sum(counts.values())} units counted, "
                f"but the return announced {line.announced}."
            )
        items.extend(
            {"sku": line.sku, "quantity": quantity, "condition": condition}
            for condition, quantity in counts.items()
            if quantity
        )
    if not items:
        raise ReceiveFormError("Count at least one unit that arrived.")
    return items


def describe_item_fields(
    items: Sequence[dict[str, Any]], fields: Sequence[tuple[str, str]]
) -> str | None:
    """Shipping names a refused entry by its index (`items[1].quantity`); staff
    know it as a SKU and a condition."""
    described = []
    for field, message in fields:
        found = _ITEM_FIELD.match(field)
        if found is None or int(found.group(1)) >= len(items):
            described.append(f"{field}: {message}")
            continue
        item = items[int(found.group(1))]
        what = found.group(2) or "line"
        described.append(f"{item['sku']} ({item['condition']}), {what}: {message}")
    return "; ".join(described) or None
