"""Return parcels: goods a customer sends back, from the label to the warehouse's
receipt.

The order service decides that a return may happen; shipping issues the label the
customer sends the parcel with (`label_created`), and the warehouse books in what
actually arrived, unit by unit, and in which state (`received`). A return called
off before the goods arrived is `cancelled`; one whose goods arrived stays received,
whatever is asked afterwards, and says so.

Commands cross each other: a cancellation may overtake the label request it undoes.
It is remembered (a cancelled return without label), so the late request is answered
with the cancellation instead of a label for goods nobody should send.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from oms_shipping.domain.model import Address, ShippingError


class ReturnStatus(StrEnum):
    LABEL_CREATED = "label_created"
    RECEIVED = "received"
    CANCELLED = "cancelled"


class Condition(StrEnum):
    RESELLABLE = "resellable"
    DAMAGED = "damaged"


@dataclass(frozen=True)
class AnnouncedLine:
    """Units the customer was told to send back, and the location they left from."""

    sku: str
    quantity: int
    location: str


@dataclass(frozen=True)
class ReceivedLine:
    """Units the warehouse took in, and in which state."""

    sku: str
    quantity: int
    condition: Condition


class ReturnAlreadyReceived(ShippingError):
    code = "return_already_received"


class ReturnIsCancelled(ShippingError):
    code = "return_cancelled"


@dataclass(frozen=True)
class ReceiptProblem:
    """What is wrong with one part of a receipt: `field` as the request names it
    (`items[1].quantity`), and why."""

    field: str
    message: str


class InvalidReceipt(ShippingError):
    """A receipt that cannot be booked: every problem found, each naming its field."""

    code = "invalid_receipt"

    def __init__(self, problems: Sequence[ReceiptProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = tuple(problems)

    @property
    def extensions(self) -> dict[str, object]:
        """Added to the problem document: the first field at fault, and all of them
        in the shape request validation uses."""
        return {
            "field": self.problems[0].field,
            "errors": [
                {"field": p.field, "in": "body", "message": p.message, "code": "invalid_receipt"}
                for p in self.problems
            ],
        }


# -- events ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnEvent:
    return_id: str
    order_id: str


@dataclass(frozen=True)
class LabelCreated(ReturnEvent):
    return_tracking_number: str


@dataclass(frozen=True)
class Received(ReturnEvent):
    lines: tuple[ReceivedLine, ...]


@dataclass(frozen=True)
class Cancelled(ReturnEvent):
    pass


# -- the return parcel ---------------------------------------------------------------


@dataclass
class ReturnParcel:
    """One return, as the warehouse sees it. Its id is the order service's."""

    id: str
    order_id: str
    status: ReturnStatus
    # What the customer sends back; empty only for a cancellation that came first.
    lines: list[AnnouncedLine]
    # Where the carrier picks the parcel up; None for such a cancellation, and once
    # the customer deleted the order.
    pickup_address: Address | None
    return_tracking_number: str | None = None
    # What arrived, per SKU and condition (units of one SKU from several locations
    # arrive in one parcel; the order service knows where each goes back to).
    received: list[ReceivedLine] = field(default_factory=list)
    received_at: datetime | None = None
    events: list[ReturnEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def with_label(
        cls,
        *,
        return_id: str,
        order_id: str,
        lines: Sequence[AnnouncedLine],
        pickup_address: Address,
        tracking_number: str,
    ) -> ReturnParcel:
        """An approved return: the label the customer sends the goods back with."""
        parcel = cls(
            return_id,
            order_id,
            ReturnStatus.LABEL_CREATED,
            list(lines),
            pickup_address,
            return_tracking_number=tracking_number,
        )
        parcel._record(LabelCreated(return_id, order_id, tracking_number))
        return parcel

    @classmethod
    def cancelled_before_label(cls, *, return_id: str, order_id: str) -> ReturnParcel:
        """The cancellation overtook the label request: remembered, so that the late
        request issues no label."""
        parcel = cls(return_id, order_id, ReturnStatus.CANCELLED, [], None)
        parcel._record(Cancelled(return_id, order_id))
        return parcel

    def label_asked_again(self) -> None:
        """A label request for a return that exists gets the answer that tells where
        it stands: its label (the same one), or its cancellation."""
        if self.status is ReturnStatus.CANCELLED:
            self._record(Cancelled(self.id, self.order_id))
            return
        assert self.return_tracking_number is not None, "a return not cancelled has a label"
        self._record(LabelCreated(self.id, self.order_id, self.return_tracking_number))

    def cancel(self) -> None:
        """Call the return off if its goods have not arrived; otherwise say what
        arrived (the order refunds it, cancellation or not). Asked again, answered
        again."""
        if self.status is ReturnStatus.RECEIVED:
            self._record(Received(self.id, self.order_id, tuple(self.received)))
            return
        self.status = ReturnStatus.CANCELLED
        self._record(Cancelled(self.id, self.order_id))

    def receive(self, items: Sequence[ReceivedLine], now: datetime) -> None:
        """The warehouse books in what arrived: SKUs the return announced, never more
        units of a SKU than announced (whatever their condition), something at all.
        Less than announced is fine: only what arrived is refunded. Once only."""
        if self.status is ReturnStatus.RECEIVED:
            raise ReturnAlreadyReceived(
                f"return {self.id} was received already (at {self.received_at})"
            )
        if self.status is ReturnStatus.CANCELLED:
            raise ReturnIsCancelled(f"return {self.id} was cancelled; nothing is expected")
        problems = receipt_problems(self.lines, items)
        if problems:
            raise InvalidReceipt(problems)
        self.received = _merged(items)
        self.received_at = now
        self.status = ReturnStatus.RECEIVED
        self._record(Received(self.id, self.order_id, tuple(self.received)))

    def erase_personal_data(self) -> None:
        """The customer deleted the order: forget where the parcel came from."""
        self.pickup_address = None

    def _record(self, event: ReturnEvent) -> None:
        self.events.append(event)


def receipt_problems(
    announced: Iterable[AnnouncedLine], items: Sequence[ReceivedLine]
) -> list[ReceiptProblem]:
    """Why `items` cannot be booked in for a return that announced `announced` (none:
    they can), naming each item's field by its position in the request."""
    expected: dict[str, int] = {}
    for line in announced:
        expected[line.sku] = expected.get(line.sku, 0) + line.quantity
    problems: list[ReceiptProblem] = []
    counted: dict[str, int] = {}
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if item.quantity < 0:
            problems.append(ReceiptProblem(f"{where}.quantity", "cannot be negative"))
            continue
        if item.sku not in expected:
            problems.append(ReceiptProblem(f"{where}.sku", f"the return announced no {item.sku}"))
            continue
        before = counted.get(item.sku, 0)
        counted[item.sku] = before + item.quantity
        if before <= expected[item.sku] < counted[item.sku]:
            problems.append(
                ReceiptProblem(
                    f"{where}.quantity",
                    f"{counted[item.sku]} {item.sku} received in all, more than the "
                    f"{expected[item.sku]} the return announced",
                )
            )
    if not problems and sum(counted.values()) == 0:
        problems.append(ReceiptProblem("items", "nothing received: book in at least one unit"))
    return problems


def _merged(items: Iterable[ReceivedLine]) -> list[ReceivedLine]:
    """One line per SKU and condition, in the order first named; no empty ones."""
    totals: dict[tuple[str, Condition], int] = {}
    for item in items:
        if item.quantity:
            key = (item.sku, item.condition)
            totals[key] = totals.get(key, 0) + item.quantity
    return [ReceivedLine(sku, quantity, condition) for (sku, condition), quantity in totals.items()]
