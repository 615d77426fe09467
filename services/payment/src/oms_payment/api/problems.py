"""How each refusal of the payment service answers over HTTP: one table, by the
error's code, whatever route raised it."""

from __future__ import annotations

from oms_payment.domain.model import NothingToRefund, PaymentError, RefundError
from oms_payment.handlers.payments import PaymentNotFound, RefundKeyReused
from oms_runtime.problems import ErrorProblems, ProblemType

PROBLEMS = ErrorProblems(
    errors=(PaymentError,),
    by_code={
        PaymentError.code: ProblemType(409, "payment-conflict", "Not possible now"),
        PaymentNotFound.code: ProblemType(404, "payment-not-found", "Payment not found"),
        RefundKeyReused.code: ProblemType(409, "idempotency-key-reused", "Idempotency key reused"),
        NothingToRefund.code: ProblemType(409, "nothing-to-refund", "Nothing to refund"),
        RefundError.code: ProblemType(
            422, "refund-not-allowed", "Refund not allowed", field="amount"
        ),
    },
)
