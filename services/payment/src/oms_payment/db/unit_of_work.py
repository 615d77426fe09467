"""The payment service's unit of work over Postgres (what handlers see of it:
`handlers/unit_of_work.py`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Self

from oms_payment.db.repository import OperationRepository, OperationsLeased, PaymentRepository
from oms_runtime.messaging.unit_of_work import UnitOfWork


class SqlPaymentUnitOfWork(UnitOfWork):
    payments: PaymentRepository
    operations: OperationRepository

    def __init__(
        self,
        *args: Any,
        operations_leased: OperationsLeased | None = None,
        lease: timedelta = timedelta(seconds=30),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # Gateway operations queued by this unit of work go to this process's worker
        # once committed, leased to it for `lease`.
        self._operations_leased = operations_leased
        self._lease = lease

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.payments = PaymentRepository(self, self._operations_leased, self._lease)
        self.operations = OperationRepository(self.connection, self)
        return self
