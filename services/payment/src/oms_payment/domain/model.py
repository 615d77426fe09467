"""A payment for one order, and the gateway operations that move it.

Gateway calls happen outside any transaction (they are slow and can time out), so
the aggregate never calls the gateway: it asks for an `Operation`, which a worker
executes and reports back. Each operation has an idempotency key derived from the
payment and the operation (and the refund or the parcel, for refunds and captures),
so however often it is retried the gateway charges, captures, voids or refunds at
most once.

An order shipped in several parcels is paid by one authorization and a capture per
parcel (a partial capture of it). The captures of a payment go to the gateway one at
a time, so the one that brings the captured total to what the order expects knows
it is the last: it is sent `final` (the gateway releases nothing else after it) and
settles the payment. A partial cancellation lowers what the order expects to what
it keeps; once the kept parcels' captures are in, the rest of the hold is released.

Refunds come from the captured money, never more than is captured and not already
refunded: asked by staff, by a cancellation after capture, or for a return (what
the warehouse received; one refund per return and attempt, see `refund_return`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from oms_contracts.reasons import StatusReason


class PaymentStatus(StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    # Some parcels' money captured, the rest of the hold kept for the others (an
    # extension of the design's statuses).
    PARTIALLY_CAPTURED = "partially_captured"
    CAPTURED = "captured"
    VOIDED = "voided"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    FAILED = "failed"


# Money captured and not all given back: what may be refunded from.
REFUNDABLE = frozenset(
    {PaymentStatus.PARTIALLY_CAPTURED, PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED}
)


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


class CaptureStatus(StrEnum):
    # Asked for; goes to the gateway once the capture before it is answered.
    WAITING = "waiting"
    PENDING = "pending"  # at the gateway
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PaymentError(Exception):
    """Something the payment service refuses; `code` says what (the API answers by
    it: see `api/problems.py`)."""

    code = "payment_error"


class RefundError(PaymentError):
    """An amount the payment cannot give back (the input, not the payment's state)."""

    code = "refund_not_allowed"


class NothingToRefund(PaymentError):
    """The payment has no money left to give back: never captured, voided, or all of
    it refunded or being refunded. Its state, not the amount asked for, refuses."""

    code = "nothing_to_refund"


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
    # The last attempt got a server error back rather than no answer (see
    # gateway.base.Unavailable): the saga takes that as a refusal.
    answered: bool = False


GatewayAnswer = Approved | Declined | GaveUp


@dataclass(frozen=True)
class Operation:
    payment_id: str
    kind: OperationKind
    amount: int
    # The refund id for refunds, the parcel (fulfillment id) for a parcel's capture,
    # the re-authorization for a new hold; None otherwise.
    reference: str | None = None
    # A capture that settles: the gateway releases what is left of the hold.
    final: bool = True

    @property
    def idempotency_key(self) -> str:
        key = f"{self.payment_id}:{self.kind.value}"
        return f"{key}:{self.reference}" if self.reference else key


def return_refund_id(return_id: str, attempt: int) -> str:
    """A return's refund id: one per attempt, so a redelivered or re-sent command
    refunds once, and an operator's retry after a refusal is a new refund (its own
    idempotency key at the gateway)."""
    return f"return-{return_id}-{attempt}"


@dataclass
class Refund:
    id: str
    amount: int
    reason: str
    status: str = "pending"  # pending | succeeded | failed
    # The return it gives the money back for (None: a cancellation's, or staff's).
    return_id: str | None = None
    # Why it failed: the gateway's refusal, or the last error before giving up.
    error: str | None = None
    # Failed without an answer (timeouts, 5xx): the gateway may have refunded anyway,
    # so it is only ever asked again under its own key, never replaced by a new one.
    unanswered: bool = False


@dataclass
class Capture:
    """One parcel's share of the authorization, captured (or to be). `fulfillment_id`
    None: the order's one capture from before orders had parcels."""

    fulfillment_id: str | None
    amount: int
    status: CaptureStatus = CaptureStatus.WAITING
    # Sent as the last capture: the gateway released the rest of the hold with it.
    final: bool = False
    error: str | None = None

    @property
    def in_flight(self) -> bool:
        return self.status in (CaptureStatus.WAITING, CaptureStatus.PENDING)


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
    amount: int  # this capture's
    currency: str
    fulfillment_id: str | None = None
    # Every capture of the payment so far, this one included.
    captured_total: int | None = None
    # Told again (the capture was asked for again); no money moved now.
    repeated: bool = False


@dataclass(frozen=True)
class CaptureFailed(PaymentEvent):
    error: str
    fulfillment_id: str | None = None
    # The gateway did not answer (as opposed to refusing): asking again may succeed.
    retryable: bool = False


@dataclass(frozen=True)
class Voided(PaymentEvent):
    pass


@dataclass(frozen=True)
class Refunded(PaymentEvent):
    refund_id: str
    amount: int
    refunded_total: int
    currency: str
    # The return it was for (None: a cancellation's, or staff's).
    return_id: str | None = None


@dataclass(frozen=True)
class ReturnRefundFailed(PaymentEvent):
    """A return's refund was refused (by us: it exceeds what may be refunded; or by
    the gateway), or the gateway never answered it."""

    return_id: str
    error: str


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
    retryable: bool = False


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
    # The order was called off (all of it, or all but the parcels that left): give
    # the money back, or release what is held beyond `keep_amount`, as soon as the
    # authorization or captures in flight allow.
    void_requested: bool = False
    # What a called-off order keeps (the parcels that left); None: not called off.
    keep_amount: int | None = None
    capture_requested: bool = False
    # A new total asked for by a change of the order's items, while its
    # authorization is in flight; how many re-authorizations there were.
    pending_reauthorization: int | None = None
    reauthorizations: int = 0
    refunds: list[Refund] = field(default_factory=list)
    captures: list[Capture] = field(default_factory=list)
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

    @property
    def expected_total(self) -> int:
        """What the order pays once every capture is in: the authorized amount, or
        what a partial cancellation keeps."""
        return self.authorized_amount if self.keep_amount is None else self.keep_amount

    @property
    def capturable(self) -> int:
        """What may still be asked for: the expected total less the captures made,
        at the gateway or waiting for their turn."""
        asked = sum(
            c.amount for c in self.captures if c.in_flight or c.status is CaptureStatus.SUCCEEDED
        )
        return max(0, self.expected_total - asked)

    @property
    def holds_money(self) -> bool:
        """An authorization (some of it maybe captured) still holds money on the card."""
        return self.status in (PaymentStatus.AUTHORIZED, PaymentStatus.PARTIALLY_CAPTURED)

    @property
    def settled(self) -> bool:
        """The last capture is in (or the rest of the hold was released)."""
        return self.status in (
            PaymentStatus.CAPTURED,
            PaymentStatus.PARTIALLY_REFUNDED,
            PaymentStatus.REFUNDED,
        )

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
                self.capture_succeeded(amount, operation.reference)
            case OperationKind.CAPTURE, Declined(code=why):
                self.capture_failed(why, operation.reference)
            case OperationKind.CAPTURE, GaveUp(error=why, answered=answered):
                self.capture_failed(why, operation.reference, retryable=not answered)
            case OperationKind.VOID, Approved():
                self.void_succeeded()
            case OperationKind.VOID, Declined(code=why):
                self.compensation_failed(why)
            case OperationKind.VOID, GaveUp(error=why, answered=answered):
                self.compensation_failed(why, retryable=not answered)
            case OperationKind.REFUND, Approved():
                self.refund_succeeded(operation.reference or "")
            case OperationKind.REFUND, Declined(code=why):
                self.refund_failed(operation.reference or "", why)
            case OperationKind.REFUND, GaveUp(error=why):
                self.refund_failed(
                    operation.reference or "", f"gateway_unavailable: {why}", unanswered=True
                )
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
        self._follow_void()

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

    def capture_succeeded(self, amount: int, fulfillment_id: str | None = None) -> None:
        capture = self._capture_of(fulfillment_id)
        if capture is None or capture.status is not CaptureStatus.PENDING:
            return  # an answer reported twice
        capture.status = CaptureStatus.SUCCEEDED
        self.captured_amount += amount
        if capture.final:
            self._settle()
        else:
            self.status = PaymentStatus.PARTIALLY_CAPTURED
        self._announce(capture)
        self._send_next_capture()
        self._follow_void()

    def capture_failed(
        self, error: str, fulfillment_id: str | None = None, *, retryable: bool = False
    ) -> None:
        capture = self._capture_of(fulfillment_id)
        if capture is None or capture.status is not CaptureStatus.PENDING:
            return
        capture.status = CaptureStatus.FAILED
        capture.error = error
        if not (self.void_requested and not self.keep_amount):
            # (When the whole order was called off nobody wants the capture any
            # more: the hold is released instead.)
            self.events.append(
                CaptureFailed(self.id, self.order_id, error, fulfillment_id, retryable)
            )
        self._send_next_capture()
        self._follow_void()

    def void_succeeded(self) -> None:
        if self.status is PaymentStatus.AUTHORIZED:
            self.status = PaymentStatus.VOIDED
            self.events.append(Voided(self.id, self.order_id))
        elif self.status is PaymentStatus.PARTIALLY_CAPTURED:
            # What the captures left of the hold is released: nothing more will come.
            self._settle()
            self._follow_void()

    def compensation_failed(self, error: str, *, retryable: bool = False) -> None:
        self.events.append(CompensationFailed(self.id, self.order_id, error, retryable))

    def refund_succeeded(self, refund_id: str) -> None:
        refund = self._find_refund(refund_id)
        if refund is None or refund.status != "pending":
            return
        refund.status = "succeeded"
        self.refunded_amount += refund.amount
        if self.status is not PaymentStatus.PARTIALLY_CAPTURED:
            self._settle()
        self._announce_refund(refund)

    def refund_failed(self, refund_id: str, error: str, *, unanswered: bool = False) -> None:
        """The gateway refused the refund, or never answered (`unanswered`)."""
        refund = self._find_refund(refund_id)
        if refund is None or refund.status != "pending":
            return
        refund.status = "failed"
        refund.error = error
        refund.unanswered = unanswered
        if refund.return_id is not None:
            self.events.append(ReturnRefundFailed(self.id, self.order_id, refund.return_id, error))
        else:
            self.compensation_failed(error)

    # -- requests from the order saga and from staff --------------------------

    def request_capture(self, amount: int | None = None, fulfillment_id: str | None = None) -> None:
        """Capture one parcel's `amount` (None: all that may still be captured).
        Asked again for the same parcel, the first capture's outcome stands."""
        capture = self._capture_of(fulfillment_id)
        if capture is not None and capture.status is CaptureStatus.SUCCEEDED:
            self._announce(capture, repeated=True)  # tell the saga again
            return
        if capture is not None and capture.in_flight:
            return  # its answer will be announced
        if not self.holds_money:
            if self.settled and fulfillment_id is None and amount is None:
                # Already settled: tell the saga again.
                self._announce(None, repeated=True)
            elif self.settled:
                self._refuse_capture(fulfillment_id, amount)
            # Pending, voided or failed: nothing to capture (the saga finds out by
            # its deadline, as before parcels).
            return
        wanted = self.capturable if amount is None else amount
        if not 0 < wanted <= self.capturable:
            self._refuse_capture(fulfillment_id, amount)
            return
        if capture is None:
            capture = Capture(fulfillment_id, wanted)
            self.captures.append(capture)
        else:  # it failed before: try again, under the same idempotency key
            capture.amount, capture.status, capture.error = wanted, CaptureStatus.WAITING, None
        self.capture_requested = True
        self._send_next_capture()

    def request_void(self, keep_amount: int = 0) -> None:
        """Give the customer's money back, whatever state the payment is in; all but
        `keep_amount`, what the order keeps of it (the parcels that left)."""
        if self.status in (PaymentStatus.VOIDED, PaymentStatus.FAILED):
            # Nothing is held on the card, the void is already true.
            self.events.append(Voided(self.id, self.order_id))
            return
        limit = max(self.amount, self.authorized_amount)
        if keep_amount > limit:
            self.compensation_failed(
                f"keep_amount {keep_amount} is above the authorized amount {limit}"
            )
            return
        self.void_requested = True
        self.keep_amount = keep_amount
        self._refuse_waiting_captures_beyond_keep()
        self._follow_void()

    def refund(self, refund_id: str, amount: int, reason: str) -> Refund:
        """A refund asked for by staff; never more than is captured and not refunded."""
        if self.captured_amount == 0 or self.status not in REFUNDABLE:
            raise NothingToRefund(f"a {self.status} payment cannot be refunded")
        if self.refundable == 0:
            raise NothingToRefund(
                f"all {self.captured_amount} captured is refunded or being refunded"
            )
        if not 0 < amount <= self.refundable:
            raise RefundError(
                f"refund must be 1..{self.refundable} (captured {self.captured_amount}, "
                f"refunded or being refunded {self.captured_amount - self.refundable})"
            )
        return self._refund(amount, reason, refund_id)

    def refund_return(self, return_id: str, attempt: int, amount: int) -> None:
        """Give back what a return brought back, from the captured money, under the
        refund id of (return, attempt). Asked again (a redelivery, the order's
        deadline re-sending it), the refund's outcome is told again; a return is
        refunded at most once whatever the attempt: while one of its refunds is at
        the gateway, has succeeded, or failed without an answer (it may have gone
        through: it is asked again under its own key), no other is made. Only a
        refusal (no money moved) lets a later attempt make a new refund."""
        refund = self._find_refund(return_refund_id(return_id, attempt)) or next(
            (r for r in self.refunds if r.return_id == return_id and not self._refused(r)),
            None,
        )
        if refund is not None:
            self._follow_return_refund(refund)
            return
        refusal = self._return_refund_refusal(amount)
        if refusal is not None:
            self.events.append(ReturnRefundFailed(self.id, self.order_id, return_id, refusal))
            return
        self._refund(amount, "return", return_refund_id(return_id, attempt), return_id)

    def erase_card_token(self) -> None:
        """The order was deleted: forget the customer's card token. What was paid
        stays for the books."""
        self.token = ""

    def repeat_outcome(self) -> None:
        """A repeated authorization request gets the answer the first one got."""
        if self.status in (
            PaymentStatus.AUTHORIZED,
            PaymentStatus.PARTIALLY_CAPTURED,
            PaymentStatus.CAPTURED,
        ):
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

    def _capture_of(self, fulfillment_id: str | None) -> Capture | None:
        return next((c for c in self.captures if c.fulfillment_id == fulfillment_id), None)

    def _send_next_capture(self) -> None:
        """Send the first waiting capture once none is at the gateway: one at a time,
        so the capture that completes the expected total is known when it is sent
        (`final`), and no final capture can release a hold another still needs."""
        if any(c.status is CaptureStatus.PENDING for c in self.captures):
            return
        capture = next((c for c in self.captures if c.status is CaptureStatus.WAITING), None)
        if capture is None:
            return
        capture.status = CaptureStatus.PENDING
        capture.final = self.captured_amount + capture.amount >= self.expected_total
        self.operations.append(
            Operation(
                self.id,
                OperationKind.CAPTURE,
                capture.amount,
                capture.fulfillment_id,
                final=capture.final,
            )
        )

    def _refuse_waiting_captures_beyond_keep(self) -> None:
        """Captures still waiting for their turn that no longer fit in what the order
        keeps are refused (all of them when it keeps nothing: nobody wants them)."""
        room = self.expected_total - self.captured_amount
        room -= sum(c.amount for c in self.captures if c.status is CaptureStatus.PENDING)
        for capture in self.captures:
            if capture.status is not CaptureStatus.WAITING:
                continue
            if capture.amount <= room:
                room -= capture.amount
                continue
            capture.status = CaptureStatus.FAILED
            capture.error = f"capture_exceeds_remaining: the order keeps {self.expected_total}"
            if self.keep_amount:
                self.events.append(
                    CaptureFailed(self.id, self.order_id, capture.error, capture.fulfillment_id)
                )

    def _follow_void(self) -> None:
        """Where a called-off order's money stands, the next step towards giving back
        all but what it keeps: wait for the captures at the gateway (and, when it
        keeps some parcels, for theirs), release what is still held, refund what
        was captured beyond what it keeps, and say so."""
        if not self.void_requested or self.status is PaymentStatus.PENDING:
            return
        if any(c.in_flight for c in self.captures):
            return  # decided once the gateway answered
        keep = self.keep_amount or 0
        if self.captured_amount < keep:
            return  # the kept parcels' captures are still to come
        if self.holds_money:
            held = self.authorized_amount - self.captured_amount
            self.operations.append(Operation(self.id, OperationKind.VOID, held))
            return
        if not self.settled:
            return
        excess = self.refundable - keep
        if excess > 0:
            self._refund(excess, StatusReason.ORDER_CANCELLED)
        if keep > 0:
            # The parcels that left are paid for, nothing else is held.
            self.events.append(Voided(self.id, self.order_id))
        elif excess <= 0:
            self._repeat_refunded()

    def _settle(self) -> None:
        if self.refunded_amount == 0:
            self.status = PaymentStatus.CAPTURED
        elif self.refunded_amount >= self.captured_amount:
            self.status = PaymentStatus.REFUNDED
        else:
            self.status = PaymentStatus.PARTIALLY_REFUNDED

    def _announce(self, capture: Capture | None, *, repeated: bool = False) -> None:
        """`payment.captured` for one capture (None: the payment's whole capture)."""
        self.events.append(
            Captured(
                self.id,
                self.order_id,
                capture.amount if capture is not None else self.captured_amount,
                self.currency,
                capture.fulfillment_id if capture is not None else None,
                self.captured_amount,
                repeated,
            )
        )

    def _refuse_capture(self, fulfillment_id: str | None, amount: int | None) -> None:
        asked = "the rest" if amount is None else str(amount)
        left = "the payment is settled" if self.settled else f"{self.capturable} may still be"
        reason = (
            f"capture_exceeds_remaining: {asked} asked, {left} captured "
            f"(expected total {self.expected_total}, captured {self.captured_amount})"
        )
        self.events.append(CaptureFailed(self.id, self.order_id, reason, fulfillment_id))

    def _refund(
        self,
        amount: int,
        reason: str,
        refund_id: str | None = None,
        return_id: str | None = None,
    ) -> Refund:
        refund = Refund(
            refund_id or f"{self.id}-r{len(self.refunds) + 1}", amount, reason, return_id=return_id
        )
        self.refunds.append(refund)
        self.operations.append(Operation(self.id, OperationKind.REFUND, amount, refund.id))
        return refund

    @staticmethod
    def _refused(refund: Refund) -> bool:
        """Failed with the gateway's (or our) no: no money moved."""
        return refund.status == "failed" and not refund.unanswered

    def _follow_return_refund(self, refund: Refund) -> None:
        """A return's refund asked for again: say how it ended, or ask the gateway
        again under its key when it never answered."""
        return_id = refund.return_id or ""
        if refund.status == "succeeded":
            self._announce_refund(refund)
        elif refund.unanswered:
            refusal = self._return_refund_refusal(refund.amount)
            if refusal is not None:
                self.events.append(ReturnRefundFailed(self.id, self.order_id, return_id, refusal))
                return
            refund.status, refund.error, refund.unanswered = "pending", None, False
            self.operations.append(
                Operation(self.id, OperationKind.REFUND, refund.amount, refund.id)
            )
        elif refund.status == "failed":
            error = refund.error or "refund_failed"
            self.events.append(ReturnRefundFailed(self.id, self.order_id, return_id, error))
        # Pending: its answer will be announced.

    def _return_refund_refusal(self, amount: int) -> str | None:
        """Why a return's refund of `amount` cannot be made now, if it cannot."""
        if self.captured_amount == 0 or self.status not in (*REFUNDABLE, PaymentStatus.REFUNDED):
            return f"nothing_captured: the payment is {self.status}"
        if amount > self.refundable:
            return (
                f"refund_exceeds_refundable: {amount} asked, {self.refundable} may still be "
                f"refunded (captured {self.captured_amount}, refunded or being refunded "
                f"{self.captured_amount - self.refundable})"
            )
        return None

    def _announce_refund(self, refund: Refund) -> None:
        self.events.append(
            Refunded(
                self.id,
                self.order_id,
                refund.id,
                refund.amount,
                self.refunded_amount,
                self.currency,
                refund.return_id,
            )
        )

    def _repeat_refunded(self) -> None:
        """Re-announce the money is back; while a refund is still running its own
        announcement will follow, so say nothing yet."""
        # (A return's refund is the return's answer, not the cancellation's.)
        if any(r.status == "pending" and r.return_id is None for r in self.refunds):
            return
        last = next(
            (r for r in reversed(self.refunds) if r.status == "succeeded" and r.return_id is None),
            None,
        )
        if last is not None:
            self._announce_refund(last)

    def _find_refund(self, refund_id: str) -> Refund | None:
        return next((r for r in self.refunds if r.id == refund_id), None)
