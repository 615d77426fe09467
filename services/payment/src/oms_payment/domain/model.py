"""A payment for one order, and the gateway operations that move it.

Gateway calls happen outside any transaction (they are slow and can time out), so
the aggregate never calls the gateway: it asks for an `Operation`, which a worker
executes and reports back. Each operation has an idempotency key derived from the
payment and the operation (and the refund, for refunds), so however often it is
retried the gateway charges, captures, voids or refunds at most once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from oms_contracts.reasons import StatusReason


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
    REFUND = "refund"
    # Find holds placed under this payment whose answer never reached us, and
    # release them (after an authorization gave up on an unanswering gateway).
    RECONCILE = "reconcile"
    # Release the hold a re-authorization replaced (reference: its gateway id).
    RELEASE_OLD_HOLD = "release_old_hold"


class PaymentError(Exception):
    """Something the payment service refuses; `code` says what (the API answers by
    it: see `api/problems.py`)."""

    code = "payment_error"


class RefundError(PaymentError):
    code = "refund_not_allowed"


# -- what the gateway answered ---------------------------------------------------


@dataclass(frozen=True)
class Approved:
    gateway_id: str
    amount: int


@dataclass(frozen=True)
class Declined:
    """The gateway answered no; asking again will not change that."""

    code: str


@dataclass(frozen=True)
class GaveUp:
    """No answer after every attempt (timeouts, 5xx, refused connections)."""

    error: str


GatewayAnswer = Approved | Declined | GaveUp


@dataclass(frozen=True)
class Operation:
    payment_id: str
    kind: OperationKind
    amount: int
    # The refund id for refunds; None otherwise.
    reference: str | None = None

    @property
    def idempotency_key(self) -> str:
        key = f"{self.payment_id}:{self.kind.value}"
        return f"{key}:{self.reference}" if self.reference else key


@dataclass
class Refund:
    id: str
    amount: int
    reason: str
    status: str = "pending"  # pending | succeeded | failed


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
class CaptureFailed(PaymentEvent):
    error: str


@dataclass(frozen=True)
class Voided(PaymentEvent):
    pass


@dataclass(frozen=True)
class Refunded(PaymentEvent):
    refund_id: str
    amount: int
    refunded_total: int
    currency: str


@dataclass(frozen=True)
class Reauthorized(PaymentEvent):
    amount: int
    currency: str


@dataclass(frozen=True)
class ReauthorizationFailed(PaymentEvent):
    reason: str


@dataclass(frozen=True)
class CompensationFailed(PaymentEvent):
    """A void or refund the order saga asked for could not be done."""

    error: str


@dataclass(frozen=True)
class HoldMayRemain(PaymentEvent):
    """A hold nobody wants any more could not be released, or looked for: a person
    has to check the gateway."""

    error: str


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
    # The order was called off while the authorization or capture was in flight:
    # give the money back as soon as that finishes.
    void_requested: bool = False
    capture_requested: bool = False
    # A new total asked for by a change of the order's items, while its
    # authorization is in flight; how many re-authorizations there were.
    pending_reauthorization: int | None = None
    reauthorizations: int = 0
    refunds: list[Refund] = field(default_factory=list)
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

    @property
    def refundable(self) -> int:
        """Captured money not yet refunded or being refunded."""
        committed = sum(r.amount for r in self.refunds if r.status != "failed")
        return self.captured_amount - committed

    # -- outcomes reported by the gateway worker ------------------------------

    def apply_gateway_answer(self, operation: Operation, answer: GatewayAnswer) -> None:
        """What the gateway's final answer to one of this payment's operations means
        for it (a retried timeout is not an answer; giving up is)."""
        reauthorizing = operation.reference is not None
        match operation.kind, answer:
            case OperationKind.AUTHORIZE, Approved(gateway_id=gateway_id):
                self.authorization_approved(gateway_id, operation.reference)
            case OperationKind.AUTHORIZE, Declined(code=code):
                if reauthorizing:
                    self.reauthorization_failed(StatusReason.PAYMENT_DECLINED)
                else:
                    self.authorization_failed(StatusReason.PAYMENT_DECLINED, code)
            case OperationKind.AUTHORIZE, GaveUp():
                if reauthorizing:
                    self.reauthorization_failed(StatusReason.PAYMENT_UNAVAILABLE)
                else:
                    self.give_up_authorization()
            case OperationKind.CAPTURE, Approved(amount=amount):
                self.capture_succeeded(amount)
            case OperationKind.CAPTURE, Declined(code=why) | GaveUp(error=why):
                self.capture_failed(why)
            case OperationKind.VOID, Approved():
                self.void_succeeded()
            case OperationKind.VOID, Declined(code=why) | GaveUp(error=why):
                self.compensation_failed(why)
            case OperationKind.REFUND, Approved():
                self.refund_succeeded(operation.reference or "")
            case OperationKind.REFUND, Declined(code=why) | GaveUp(error=why):
                self.refund_failed(operation.reference or "", why)
            case OperationKind.RELEASE_OLD_HOLD | OperationKind.RECONCILE, Approved():
                pass
            case OperationKind.RELEASE_OLD_HOLD | OperationKind.RECONCILE, (
                Declined(code=why) | GaveUp(error=why)
            ):
                self.events.append(HoldMayRemain(self.id, self.order_id, why))

    def authorization_approved(
        self, gateway_authorization_id: str, reauthorization: str | None = None
    ) -> None:
        if reauthorization is not None:
            self._reauthorization_approved(gateway_authorization_id)
            return
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

    def reauthorize(self, amount: int) -> None:
        """Hold a new total instead of the current one (the order's items changed).
        The new hold is placed first; the old one is released once it stands."""
        if self.pending_reauthorization == amount:
            return  # already asked, in flight
        can = (
            self.status is PaymentStatus.AUTHORIZED
            and not self.capture_requested
            and not self.void_requested
            and self.pending_reauthorization is None
        )
        if not can:
            self.events.append(
                ReauthorizationFailed(self.id, self.order_id, StatusReason.NOT_REAUTHORIZABLE)
            )
        elif amount == self.authorized_amount:
            self.events.append(Reauthorized(self.id, self.order_id, amount, self.currency))
        else:
            self.reauthorizations += 1
            self.pending_reauthorization = amount
            self.operations.append(
                Operation(self.id, OperationKind.AUTHORIZE, amount, f"re{self.reauthorizations}")
            )

    def reauthorization_failed(self, reason: str) -> None:
        if self.pending_reauthorization is not None:
            self.pending_reauthorization = None
            self.events.append(ReauthorizationFailed(self.id, self.order_id, reason))

    def _reauthorization_approved(self, gateway_authorization_id: str) -> None:
        if self.pending_reauthorization is None or self.status is not PaymentStatus.AUTHORIZED:
            return
        replaced = self.gateway_authorization_id
        self.gateway_authorization_id = gateway_authorization_id
        self.amount = self.authorized_amount = self.pending_reauthorization
        self.pending_reauthorization = None
        if replaced is not None:
            self.operations.append(Operation(self.id, OperationKind.RELEASE_OLD_HOLD, 0, replaced))
        self.events.append(Reauthorized(self.id, self.order_id, self.amount, self.currency))

    def give_up_authorization(self) -> None:
        """The gateway never answered: fail, and look for a hold it may have placed
        anyway so it can be released."""
        if self.status is PaymentStatus.PENDING:
            self.authorization_failed(StatusReason.PAYMENT_UNAVAILABLE)
            self.operations.append(Operation(self.id, OperationKind.RECONCILE, 0))

    def capture_succeeded(self, amount: int) -> None:
        if self.status is not PaymentStatus.AUTHORIZED:
            return
        self.status = PaymentStatus.CAPTURED
        self.captured_amount = amount
        self.events.append(Captured(self.id, self.order_id, amount, self.currency))
        if self.void_requested:
            self._refund(self.refundable, StatusReason.ORDER_CANCELLED)

    def capture_failed(self, error: str) -> None:
        if self.status is not PaymentStatus.AUTHORIZED:
            return
        if self.void_requested:
            # Nobody wants the capture any more; release the hold instead.
            self.operations.append(Operation(self.id, OperationKind.VOID, self.authorized_amount))
        else:
            self.events.append(CaptureFailed(self.id, self.order_id, error))

    def void_succeeded(self) -> None:
        if self.status is PaymentStatus.AUTHORIZED:
            self.status = PaymentStatus.VOIDED
            self.events.append(Voided(self.id, self.order_id))

    def compensation_failed(self, error: str) -> None:
        self.events.append(CompensationFailed(self.id, self.order_id, error))

    def refund_succeeded(self, refund_id: str) -> None:
        refund = self._find_refund(refund_id)
        if refund is None or refund.status != "pending":
            return
        refund.status = "succeeded"
        self.refunded_amount += refund.amount
        self.status = (
            PaymentStatus.REFUNDED
            if self.refunded_amount >= self.captured_amount
            else PaymentStatus.PARTIALLY_REFUNDED
        )
        self.events.append(
            Refunded(
                self.id,
                self.order_id,
                refund.id,
                refund.amount,
                self.refunded_amount,
                self.currency,
            )
        )

    def refund_failed(self, refund_id: str, error: str) -> None:
        refund = self._find_refund(refund_id)
        if refund is not None and refund.status == "pending":
            refund.status = "failed"
            self.compensation_failed(error)

    # -- requests from the order saga and from staff --------------------------

    def request_capture(self) -> None:
        if self.status is PaymentStatus.AUTHORIZED:
            self.capture_requested = True
            self.operations.append(
                Operation(self.id, OperationKind.CAPTURE, self.authorized_amount)
            )
        elif self.status is PaymentStatus.CAPTURED:
            # Already settled: tell the saga again.
            self.events.append(
                Captured(self.id, self.order_id, self.captured_amount, self.currency)
            )

    def request_void(self) -> None:
        """Give the customer's money back, whatever state the payment is in."""
        if self.status is PaymentStatus.PENDING or (
            self.status is PaymentStatus.AUTHORIZED and self.capture_requested
        ):
            # An authorization or capture is in flight; act once it lands.
            self.void_requested = True
        elif self.status is PaymentStatus.AUTHORIZED:
            self.operations.append(Operation(self.id, OperationKind.VOID, self.authorized_amount))
        elif self.status in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED):
            if self.refundable > 0:
                self._refund(self.refundable, StatusReason.ORDER_CANCELLED)
            else:
                self._repeat_refunded()
        elif self.status is PaymentStatus.REFUNDED:
            self._repeat_refunded()
        else:
            # Voided or failed: nothing is held on the card, the void is already true.
            self.events.append(Voided(self.id, self.order_id))

    def refund(self, refund_id: str, amount: int, reason: str) -> Refund:
        """A refund asked for by staff; never more than is captured and not refunded."""
        if self.status not in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED):
            raise RefundError(f"a {self.status} payment cannot be refunded")
        if not 0 < amount <= self.refundable:
            raise RefundError(
                f"refund must be 1..{self.refundable} (captured {self.captured_amount}, "
                f"refunded or being refunded {self.captured_amount - self.refundable})"
            )
        return self._refund(amount, reason, refund_id)

    def erase_card_token(self) -> None:
        """The order was deleted: forget the customer's card token. What was paid
        stays for the books."""
        self.token = ""

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
                    self.failure_reason or StatusReason.PAYMENT_DECLINED,
                    self.decline_code,
                )
            )
        elif self.status is PaymentStatus.VOIDED:
            self.events.append(
                AuthorizationFailed(self.id, self.order_id, StatusReason.ORDER_CANCELLED, None)
            )

    # -- internals -------------------------------------------------------------

    def _refund(self, amount: int, reason: str, refund_id: str | None = None) -> Refund:
        refund = Refund(refund_id or f"{self.id}-r{len(self.refunds) + 1}", amount, reason)
        self.refunds.append(refund)
        self.operations.append(Operation(self.id, OperationKind.REFUND, amount, refund.id))
        return refund

    def _repeat_refunded(self) -> None:
        """Re-announce the money is back; while a refund is still running its own
        announcement will follow, so say nothing yet."""
        if any(r.status == "pending" for r in self.refunds):
            return
        last = next((r for r in reversed(self.refunds) if r.status == "succeeded"), None)
        if last is not None:
            self.events.append(
                Refunded(
                    self.id,
                    self.order_id,
                    last.id,
                    last.amount,
                    self.refunded_amount,
                    self.currency,
                )
            )

    def _find_refund(self, refund_id: str) -> Refund | None:
        return next((r for r in self.refunds if r.id == refund_id), None)
