"""A payment for one order, and the gateway operations that move it.

Gateway calls happen outside any transaction (they are slow and can time out), so
the aggregate never calls the gateway: it asks for an `Operation`, which a worker
executes and reports back. Each operation has an idempotency key derived from the
payment and the kind of operation, so however often it is retried the gateway
charges, captures or voids at most once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class PaymentStatus(StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    VOIDED = "voided"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    FAILED = "failed"


class OperationKind(StrEnum):
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    VOID = "void"


@dataclass(frozen=True)
class Operation:
    payment_id: str
    kind: OperationKind
    amount: int

    @property
    def idempotency_key(self) -> str:
        return f"{self.payment_id}:{self.kind.value}"


# -- domain events ---------------------------------------------------------------


@dataclass(frozen=True)
class PaymentEvent:
    payment_id: str
    order_id: str


@dataclass(frozen=True)
class Authorized(PaymentEvent):
    amount: int
    currency: str


@dataclass(frozen=True)
class AuthorizationFailed(PaymentEvent):
    reason: str  # payment_declined | payment_unavailable | order_cancelled
    decline_code: str | None


@dataclass(frozen=True)
class Captured(PaymentEvent):
    amount: int
    currency: str


@dataclass(frozen=True)
class Voided(PaymentEvent):
    pass


@dataclass
class Payment:
    id: str
    order_id: str
    amount: int
    currency: str
    token: str
    status: PaymentStatus = PaymentStatus.PENDING
    authorized_amount: int = 0
    captured_amount: int = 0
    refunded_amount: int = 0
    gateway_authorization_id: str | None = None
    failure_reason: str | None = None
    decline_code: str | None = None
    # The order was cancelled while the authorization was in flight.
    void_requested: bool = False
    operations: list[Operation] = field(default_factory=list, compare=False, repr=False)
    events: list[PaymentEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def start(
        cls, *, payment_id: str, order_id: str, amount: int, currency: str, token: str
    ) -> Payment:
        payment = cls(payment_id, order_id, amount, currency, token)
        payment.operations.append(Operation(payment_id, OperationKind.AUTHORIZE, amount))
        return payment

    @classmethod
    def cancelled_before_authorization(cls, *, payment_id: str, order_id: str) -> Payment:
        """The void arrived before the authorization request: remember it, so a late
        authorization request for the cancelled order is refused, not charged."""
        payment = cls(payment_id, order_id, 0, "XXX", "", status=PaymentStatus.VOIDED)
        payment.events.append(Voided(payment_id, order_id))
        return payment

    # -- outcomes reported by the gateway worker ------------------------------

    def authorization_approved(self, gateway_authorization_id: str) -> None:
        if self.status is not PaymentStatus.PENDING:
            return
        self.status = PaymentStatus.AUTHORIZED
        self.gateway_authorization_id = gateway_authorization_id
        self.authorized_amount = self.amount
        self.events.append(Authorized(self.id, self.order_id, self.amount, self.currency))
        if self.void_requested:
            self.operations.append(Operation(self.id, OperationKind.VOID, self.amount))

    def authorization_failed(self, reason: str, decline_code: str | None = None) -> None:
        if self.status is not PaymentStatus.PENDING:
            return
        self.status = PaymentStatus.FAILED
        self.failure_reason = reason
        self.decline_code = decline_code
        self.events.append(AuthorizationFailed(self.id, self.order_id, reason, decline_code))

    def capture_succeeded(self, amount: int) -> None:
        if self.status is PaymentStatus.AUTHORIZED:
            self.status = PaymentStatus.CAPTURED
            self.captured_amount = amount
            self.events.append(Captured(self.id, self.order_id, amount, self.currency))

    def void_succeeded(self) -> None:
        if self.status is PaymentStatus.AUTHORIZED:
            self.status = PaymentStatus.VOIDED
            self.events.append(Voided(self.id, self.order_id))

    # -- requests from the order saga ------------------------------------------

    def request_capture(self) -> None:
        if self.status is PaymentStatus.AUTHORIZED:
            self.operations.append(
                Operation(self.id, OperationKind.CAPTURE, self.authorized_amount)
            )
        elif self.status is PaymentStatus.CAPTURED:
            # Already settled: tell the saga again.
            self.events.append(
                Captured(self.id, self.order_id, self.captured_amount, self.currency)
            )

    def request_void(self) -> None:
        if self.status is PaymentStatus.PENDING:
            self.void_requested = True
        elif self.status is PaymentStatus.AUTHORIZED:
            self.operations.append(Operation(self.id, OperationKind.VOID, self.authorized_amount))
        elif self.status in (PaymentStatus.VOIDED, PaymentStatus.FAILED):
            # Nothing is held on the card: the void is already true.
            self.events.append(Voided(self.id, self.order_id))

    def repeat_outcome(self) -> None:
        """A repeated authorization request gets the answer the first one got."""
        if self.status in (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED):
            self.events.append(
                Authorized(self.id, self.order_id, self.authorized_amount, self.currency)
            )
        elif self.status is PaymentStatus.FAILED:
            self.events.append(
                AuthorizationFailed(
                    self.id,
                    self.order_id,
                    self.failure_reason or "payment_declined",
                    self.decline_code,
                )
            )
        elif self.status is PaymentStatus.VOIDED:
            self.events.append(AuthorizationFailed(self.id, self.order_id, "order_cancelled", None))
