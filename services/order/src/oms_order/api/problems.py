"""How each refusal of the order service answers over HTTP: one table, by the
error's code, whatever route raised it."""

from __future__ import annotations

from oms_order.domain.errors import (
    InvalidOrder,
    OrderError,
    OrderNotCancellable,
    OrderNotDeletable,
    OrderNotInAttention,
    OrderNotModifiable,
)
from oms_order.domain.returns import (
    ExceedsReturnable,
    InvalidReturn,
    OrderNotShipped,
    ReturnError,
    ReturnNotAllowed,
    ReturnNotInState,
    ReturnWindowClosed,
)
from oms_order.handlers.orders import IdempotencyKeyReused, OrderNotFound
from oms_order.handlers.returns import ReturnNotFound
from oms_runtime.problems import ErrorProblems, ProblemType

PROBLEMS = ErrorProblems(
    errors=(OrderError, ReturnError),
    by_code={
        OrderError.code: ProblemType(409, "order-conflict", "The order does not allow this"),
        # What was asked for is not a valid order, whatever state it is in.
        InvalidOrder.code: ProblemType(422, "invalid-order", "The order is not valid"),
        OrderNotCancellable.code: ProblemType(
            409, "order-not-cancellable", "The order can no longer be cancelled"
        ),
        OrderNotModifiable.code: ProblemType(
            409, "order-not-modifiable", "The order cannot be changed now"
        ),
        OrderNotDeletable.code: ProblemType(
            409, "order-not-deletable", "The order is not finished"
        ),
        OrderNotInAttention.code: ProblemType(409, "order-not-in-attention", "Nothing to do"),
        OrderNotFound.code: ProblemType(404, "order-not-found", "Order not found"),
        ReturnNotFound.code: ProblemType(404, "return-not-found", "Return not found"),
        ReturnError.code: ProblemType(409, "return-conflict", "The return does not allow this"),
        ReturnNotAllowed.code: ProblemType(409, "return-not-allowed", "Not returnable"),
        OrderNotShipped.code: ProblemType(
            409, "order-not-shipped", "Nothing of this order can be returned yet"
        ),
        ReturnWindowClosed.code: ProblemType(
            409, "return-window-closed", "Shipped too long ago to be returned"
        ),
        ExceedsReturnable.code: ProblemType(
            409, "exceeds-returnable", "More than was shipped and not yet returned"
        ),
        InvalidReturn.code: ProblemType(422, "invalid-return", "The return is not valid"),
        ReturnNotInState.code: ProblemType(
            409, "return-state-conflict", "Not possible in the return's state"
        ),
        IdempotencyKeyReused.code: ProblemType(
            409, "idempotency-key-reused", "Idempotency key reused", field="Idempotency-Key"
        ),
    },
)
