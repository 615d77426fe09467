"""The gateway's business rules: holds, captures (several, partial), voids, refunds.

Plain synchronous Python with no web framework or storage imports: each rule takes
the authorization as loaded (locked) by the store, changes it in place, and returns
an `Outcome` carrying the HTTP status the gateway answers with plus the operations
to record. This is a simulator of an HTTP API, and keeping the status next to the
rule that produces it is clearer than a second mapping layer.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

logger = logging.getLogger(__name__)

TOK_OK = "tok_ok"
TOK_DECLINED = "tok_declined"
TOK_INSUFFICIENT_FUNDS = "tok_insufficient_funds"
TOK_TIMEOUT = "tok_timeout"
TOK_ERROR = "tok_error"
TOK_FLAKY = "tok_flaky"
TOK_VOID_REFUSED = "tok_void_refused"
TOK_CAPTURE_REFUSED = "tok_capture_refused"
TOK_REFUND_REFUSED = "tok_refund_refused"

_HOLD_TOKENS = frozenset(
    {TOK_OK, TOK_FLAKY, TOK_VOID_REFUSED, TOK_CAPTURE_REFUSED, TOK_REFUND_REFUSED}
)
_DECLINE_CODES = {
    TOK_DECLINED: "card_declined",
    TOK_INSUFFICIENT_FUNDS: "insufficient_funds",
}
KNOWN_TOKENS = _HOLD_TOKENS | _DECLINE_CODES.keys() | {TOK_TIMEOUT, TOK_ERROR}

TIMEOUT_BODY: dict[str, Any] = {"error": "timeout"}


class Status(StrEnum):
    AUTHORIZED = "authorized"
    DECLINED = "declined"
    # Some of the hold captured, the rest still held for later captures or a void.
    PARTIALLY_CAPTURED = "partially_captured"
    CAPTURED = "captured"
    VOIDED = "voided"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class Operation(StrEnum):
    """What the ledger records besides the authorizations themselves (the stats)."""

    ATTEMPT = "attempt"  # an authorization request that reached the card network
    CAPTURE = "capture"
    VOID = "void"  # the hold (or what was left of it) released
    REFUND = "refund"


@dataclass(frozen=True)
class Recorded:
    operation: Operation
    authorization_id: str | None = None
    amount: int = 0


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    # False for answers that must not be replayed for the idempotency key
    # (the request never really executed, so a retry should try again).
    remember: bool = True
    # The gateway did the work (and remembers the answer), but the client
    # never receives it: it sees a timeout instead.
    response_lost: bool = False
    recorded: list[Recorded] = field(default_factory=list)


@dataclass
class Authorization:
    id: str
    amount: int
    currency: str
    reference: str
    token: str
    decline_code: str | None = None
    captured_amount: int = 0
    refunded_amount: int = 0
    # The hold is over: what was not captured went back to the card holder (a void,
    # or a capture marked final). Nothing more can be captured.
    released: bool = False

    @property
    def status(self) -> Status:
        if self.decline_code is not None:
            return Status.DECLINED
        if self.captured_amount == 0:
            return Status.VOIDED if self.released else Status.AUTHORIZED
        if not self.released:
            return Status.PARTIALLY_CAPTURED
        if self.refunded_amount == 0:
            return Status.CAPTURED
        if self.refunded_amount < self.captured_amount:
            return Status.PARTIALLY_REFUNDED
        return Status.REFUNDED

    @property
    def held_amount(self) -> int:
        return 0 if self.released else self.amount - self.captured_amount

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "status": str(self.status),
            "amount": self.amount,
            "currency": self.currency,
            "reference": self.reference,
            "captured_amount": self.captured_amount,
            "refunded_amount": self.refunded_amount,
        }
        if self.decline_code is not None:
            body["decline_code"] = self.decline_code
        return body


def _error(http_status: int, code: str) -> Outcome:
    return Outcome(http_status, {"error": code})


def _invalid_state(auth: Authorization) -> Outcome:
    return Outcome(409, {"error": "invalid_state", "status": str(auth.status)})


def new_authorization_id() -> str:
    return f"auth_{secrets.token_hex(12)}"


def authorize(
    amount: int, currency: str, token: str, reference: str
) -> tuple[Outcome, Authorization | None]:
    """A hold (or a decline) for `amount`; the new authorization, if one was made."""
    attempted = Recorded(Operation.ATTEMPT)
    if token not in KNOWN_TOKENS:
        outcome = _error(422, "invalid_token")
        outcome.recorded.append(attempted)
        return outcome, None
    if token == TOK_TIMEOUT:
        # The card network never answered: no hold, and nothing to remember,
        # so a retry with the same key times out again.
        logger.info("authorization timed out reference=%s", reference)
        outcome = Outcome(504, TIMEOUT_BODY, remember=False, response_lost=True)
        outcome.recorded.append(attempted)
        return outcome, None
    if token == TOK_ERROR:
        outcome = _error(500, "gateway_error")
        outcome.recorded.append(attempted)
        return outcome, None

    auth = Authorization(
        id=new_authorization_id(),
        amount=amount,
        currency=currency,
        reference=reference,
        token=token,
        decline_code=_DECLINE_CODES.get(token),
    )
    recorded = [Recorded(Operation.ATTEMPT, auth.id, amount)]
    if auth.decline_code is not None:
        logger.info(
            "authorization %s declined (%s) reference=%s",
            auth.id,
            auth.decline_code,
            reference,
        )
        return Outcome(402, auth.to_json(), recorded=recorded), auth
    logger.info(
        "hold %s placed %d %s reference=%s", auth.id, amount, currency, reference
    )
    outcome = Outcome(
        201, auth.to_json(), response_lost=token == TOK_FLAKY, recorded=recorded
    )
    return outcome, auth


def capture(auth: Authorization | None, amount: int | None, final: bool) -> Outcome:
    """Capture `amount` (all that is still held when None). A final capture releases
    the rest of the hold; otherwise it stays held for further captures (one per
    parcel, say) or a void, and the captures together never exceed the hold."""
    if auth is None:
        return _error(404, "not_found")
    if auth.status not in (Status.AUTHORIZED, Status.PARTIALLY_CAPTURED):
        return _invalid_state(auth)
    amount = auth.held_amount if amount is None else amount
    if amount > auth.held_amount:
        return _error(422, "capture_exceeds_authorized")
    if auth.token == TOK_CAPTURE_REFUSED:
        return _error(502, "capture_refused")
    auth.captured_amount += amount
    if final or auth.held_amount == 0:
        auth.released = True
    logger.info(
        "authorization %s captured %d (%d held)", auth.id, amount, auth.held_amount
    )
    return Outcome(
        200, auth.to_json(), recorded=[Recorded(Operation.CAPTURE, auth.id, amount)]
    )


def void(auth: Authorization | None) -> Outcome:
    """Release the hold, or what partial captures left of it."""
    if auth is None:
        return _error(404, "not_found")
    if auth.status is Status.VOIDED:
        # Voiding is naturally idempotent: a compensating client that lost
        # the first answer and retries with a new key must still succeed.
        return Outcome(200, auth.to_json())
    if auth.status not in (Status.AUTHORIZED, Status.PARTIALLY_CAPTURED):
        return _invalid_state(auth)
    if auth.token == TOK_VOID_REFUSED:
        return _error(502, "void_refused")
    released = auth.held_amount
    auth.released = True
    logger.info("authorization %s voided (%d released)", auth.id, released)
    return Outcome(
        200, auth.to_json(), recorded=[Recorded(Operation.VOID, auth.id, released)]
    )


def refund(
    auth: Authorization | None, amount: int, *, refuse_token_refunds: bool = True
) -> Outcome:
    """Give back `amount` of the captured money. `refuse_token_refunds`: the
    `tok_refund_refused` authorizations' refunds are refused (a definitive `402`,
    remembered for its key like any answer)."""
    if auth is None:
        return _error(404, "not_found")
    if auth.captured_amount == 0:
        return _invalid_state(auth)
    if auth.refunded_amount + amount > auth.captured_amount:
        return _error(422, "refund_exceeds_captured")
    if auth.token == TOK_REFUND_REFUSED and refuse_token_refunds:
        logger.info("authorization %s: refund of %d refused", auth.id, amount)
        return _error(402, "refund_refused")
    auth.refunded_amount += amount
    refund_id = f"ref_{secrets.token_hex(12)}"
    logger.info("authorization %s refunded %d (%s)", auth.id, amount, refund_id)
    return Outcome(
        201,
        {
            "id": refund_id,
            "authorization_id": auth.id,
            "amount": amount,
            "status": "refunded",
        },
        recorded=[Recorded(Operation.REFUND, auth.id, amount)],
    )
