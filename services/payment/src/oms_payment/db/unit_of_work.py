from __future__ import annotations

from typing import Self

from oms_payment.db.repository import OperationRepository, PaymentRepository
from oms_runtime.messaging.unit_of_work import UnitOfWork


class PaymentUnitOfWork(UnitOfWork):
    payments: PaymentRepository
    operations: OperationRepository

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.payments = PaymentRepository(self.connection)
        self.operations = OperationRepository(self.connection)
        return self
