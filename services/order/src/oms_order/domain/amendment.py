"""A change of an order's items, under way: a small saga of its own.

It holds the parcels, reserves the new lines (all or nothing; inventory allocates
them afresh, so they may come from other locations), authorizes the new total when
it changed, and makes the dispatch notes match the new parcels. A refusal on the way
undoes the earlier steps and leaves the order as it was: the stock goes back to the
old lines if the new ones were reserved (and, should inventory place them elsewhere
this time, the dispatch notes follow), and the parcels are released.

Each transition answers one reply from another service. It records the next request
in `events` (the order takes them over) and tells the order what became of the
change: the lines it now holds (`stock_adjusted`), or how the change ended
(`Ending`). The order's own status never moves while its items change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from oms_order.domain import events as domain_events
from oms_order.domain.fulfillment import Fulfillment
from oms_order.domain.values import OrderLine, total_of


class AmendmentStep(StrEnum):
    HOLDING = "holding"  # asked shipping to keep the parcel
    RESERVING = "reserving"  # asked inventory for the new lines
    AUTHORIZING = "authorizing"  # asked payment to hold the new total
    UPDATING = "updating"  # asked shipping to pack the new lines
    REVERTING_STOCK = "reverting_stock"  # payment refused: old lines back
    RELEASING = "releasing"  # nothing changes after all: release the parcel


@dataclass(frozen=True)
class Applied:
    """Stock, payment and dispatch note all hold the new lines."""


@dataclass(frozen=True)
class Rejected:
    """Everything is as it was before the change was asked for."""

    reason: str
    skus: tuple[str, ...] = ()


@dataclass(frozen=True)
class RevertFailed:
    """The old lines could not be reserved back (someone bought the stock
    meanwhile): only an operator can sort that out."""

    reason: str


Ending = Applied | Rejected | RevertFailed


@dataclass
class Amendment:
    order_id: str
    # What the customer asked for, and the order's lines before (priced).
    lines: list[tuple[str, int]]
    previous: list[OrderLine]
    step: AmendmentStep = AmendmentStep.HOLDING
    # Why the change is being undone, once it is.
    reason: str | None = None
    skus: list[str] = field(default_factory=list)
    # Where the shipping address is (only locations that ship there may send).
    country: str | None = None
    # The parcels inventory allocated for the lines now held (new, or old again).
    parcels: list[Fulfillment] | None = None
    events: list[domain_events.OrderEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def start(
        cls,
        order_id: str,
        current: list[OrderLine],
        requested: list[tuple[str, int]],
        country: str | None = None,
    ) -> Amendment:
        """First keep the parcels in their warehouses."""
        previous = [OrderLine(line.sku, line.quantity, line.unit_price) for line in current]
        amendment = cls(order_id, requested, previous, country=country)
        amendment._record(domain_events.AmendmentStarted(order_id, tuple(requested)))
        return amendment

    def shipment_held(self) -> None:
        if self.step is AmendmentStep.HOLDING:
            self.step = AmendmentStep.RESERVING
            self._record(
                domain_events.AmendmentStockRequested(
                    self.order_id, tuple(self.lines), self.country
                )
            )

    def hold_refused(self, reason: str) -> Ending | None:
        if self.step is AmendmentStep.HOLDING:
            return Rejected(reason)
        return None

    def stock_adjusted(
        self,
        unit_prices: dict[str, int],
        parcels: list[Fulfillment],
        current: list[Fulfillment],
    ) -> list[OrderLine] | None:
        """Inventory holds what was asked of it, in `parcels`; returns the lines the
        order holds now (None: this was not awaited). `current`: the order's parcels
        as the dispatch notes have them."""
        if self.step is AmendmentStep.RESERVING:
            self.parcels = parcels
            lines = [OrderLine(sku, quantity, unit_prices[sku]) for sku, quantity in self.lines]
            total = total_of(lines)
            if total != total_of(self.previous):
                self.step = AmendmentStep.AUTHORIZING
                self._record(domain_events.AmendmentPaymentRequested(self.order_id, total or 0))
            else:
                self._request_shipment_update()
            return lines
        if self.step is AmendmentStep.REVERTING_STOCK:
            self.parcels = parcels
            if _layout(parcels) == _layout(current):
                self._request_release()
            else:
                # The old lines came back from other locations: the dispatch notes
                # follow them (which releases the hold too).
                self.step = AmendmentStep.RELEASING
                self._record(self._shipment_update(self.previous_lines()))
            return [OrderLine(line.sku, line.quantity, line.unit_price) for line in self.previous]
        return None

    def record_created(self, fulfillment_id: str | None, shipment_id: str) -> None:
        """A parcel this change adds got its dispatch note before the change ended."""
        for parcel in self.parcels or ():
            if parcel.id == fulfillment_id:
                parcel.record_created(shipment_id)

    def previous_lines(self) -> list[tuple[str, int]]:
        return [(line.sku, line.quantity) for line in self.previous]

    def stock_refused(self, reason: str, skus: list[str]) -> Ending | None:
        if self.step is AmendmentStep.RESERVING:
            self.reason, self.skus = reason, sorted(skus)
            self._request_release()
        elif self.step is AmendmentStep.REVERTING_STOCK:
            return RevertFailed(reason)
        return None

    def reauthorized(self) -> None:
        if self.step is AmendmentStep.AUTHORIZING:
            self._request_shipment_update()

    def reauthorization_refused(self, reason: str) -> None:
        if self.step is AmendmentStep.AUTHORIZING:
            self.reason = reason
            self.step = AmendmentStep.REVERTING_STOCK
            self._request_stock_revert()

    def shipment_updated(self) -> Ending | None:
        if self.step is AmendmentStep.UPDATING:
            return Applied()
        if self.step is AmendmentStep.RELEASING:
            return Rejected(self.reason or "refused", tuple(self.skus))
        return None

    def shipment_released(self) -> Ending | None:
        if self.step is AmendmentStep.RELEASING:
            return Rejected(self.reason or "refused", tuple(self.skus))
        return None

    def resend(self) -> bool:
        """Ask again for what the change waits for, where asking twice is safe (the
        old lines back); False if the order's own step is the one to resend."""
        if self.step is AmendmentStep.REVERTING_STOCK:
            self._request_stock_revert()
            return True
        return False

    def _request_shipment_update(self) -> None:
        self.step = AmendmentStep.UPDATING
        self._record(self._shipment_update(self.lines))

    def _shipment_update(
        self, lines: list[tuple[str, int]]
    ) -> domain_events.AmendmentShipmentUpdateRequested:
        parcels = tuple(
            (parcel.id, parcel.location, tuple(parcel.lines)) for parcel in self.parcels or ()
        )
        return domain_events.AmendmentShipmentUpdateRequested(self.order_id, tuple(lines), parcels)

    def _request_stock_revert(self) -> None:
        self._record(
            domain_events.AmendmentStockRevertRequested(
                self.order_id, tuple(self.previous_lines()), self.country
            )
        )

    def _request_release(self) -> None:
        self.step = AmendmentStep.RELEASING
        self._record(domain_events.AmendmentShipmentReleaseRequested(self.order_id))

    def _record(self, event: domain_events.OrderEvent) -> None:
        self.events.append(event)


def _layout(parcels: list[Fulfillment]) -> dict[str, list[tuple[str, int]]]:
    """Which location sends which lines."""
    return {parcel.location: sorted(parcel.lines) for parcel in parcels}
