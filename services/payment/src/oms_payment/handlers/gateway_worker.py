"""Carries out queued gateway operations (authorize, capture, void).

Operations live in Postgres, so they survive a crash and any replica may pick them
up (`FOR UPDATE SKIP LOCKED` plus a lease). The gateway is called outside any
transaction; its answer is then applied to the payment in one unit of work that
also records the call for audit and publishes the resulting events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import timedelta

from oms_payment.db.repository import ClaimedOperation
from oms_payment.db.tables import OPERATIONS_CHANNEL
from oms_payment.db.unit_of_work import PaymentUnitOfWork
from oms_payment.domain.model import OperationKind, Payment
from oms_payment.gateway.base import (
    Approved,
    CallRecord,
    Declined,
    GatewayResult,
    PaymentGateway,
    Unavailable,
)
from oms_payment.handlers.outgoing import commit_payment
from oms_runtime.logging import log_context
from oms_runtime.messaging.unit_of_work import UnitOfWorkFactory
from oms_runtime.notifications import listen_forever

log = logging.getLogger(__name__)


class GatewayWorker:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory[PaymentUnitOfWork],
        gateway: PaymentGateway,
        *,
        listen_dsn: str,
        timeout_seconds: float,
        max_attempts: int,
        retry_base_delay: float,
        concurrency: int,
        poll_interval: float = 1.0,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._gateway = gateway
        self._listen_dsn = listen_dsn
        self._max_attempts = max_attempts
        self._retry_base_delay = retry_base_delay
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        # Longer than any single call can take, so a live worker keeps its claim.
        self._lease = timedelta(seconds=timeout_seconds * 2 + 5)
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def run(self) -> None:
        listener = asyncio.create_task(
            listen_forever(self._listen_dsn, OPERATIONS_CHANNEL, self._wakeup.set)
        )
        try:
            while not self._stopping:
                claimed = await self._claim_safely()
                for item in claimed:
                    task = asyncio.create_task(self._execute(item))
                    self._running.add(task)
                    task.add_done_callback(self._finished)
                if not claimed or len(self._running) >= self._concurrency:
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)
            if self._running:
                await asyncio.wait(self._running, timeout=10.0)
        finally:
            await self._gateway.close()
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wakeup.set()

    async def _claim_safely(self) -> list[tuple[ClaimedOperation, Payment]]:
        free = self._concurrency - len(self._running)
        if free <= 0:
            return []
        try:
            async with self._unit_of_work() as uow:
                claimed = await uow.operations.claim_due(free, self._lease)
                result = []
                for item in claimed:
                    payment = await uow.payments.get(item.operation.payment_id)
                    assert payment is not None
                    result.append((item, payment))
                await uow.commit()
                return result
        except Exception as exc:  # keep the worker alive through a database outage
            log.warning("claiming gateway operations failed", extra={"error": repr(exc)})
            await asyncio.sleep(1.0)
            return []

    async def _execute(self, claimed: tuple[ClaimedOperation, Payment]) -> None:
        item, payment = claimed
        with log_context(
            correlation_id=payment.order_id,
            payment_id=payment.id,
            operation=item.operation.kind.value,
        ):
            try:
                result, call = await self._call(item, payment)
                await self._apply(item, result, call)
            except Exception:
                # The lease runs out and the operation is retried with the same key.
                log.exception("gateway operation failed unexpectedly")

    async def _call(
        self, item: ClaimedOperation, payment: Payment
    ) -> tuple[GatewayResult, CallRecord]:
        operation = item.operation
        key = operation.idempotency_key
        if operation.kind is OperationKind.AUTHORIZE:
            return await self._gateway.authorize(
                idempotency_key=key,
                amount=operation.amount,
                currency=payment.currency,
                token=payment.token,
                reference=payment.id,
            )
        assert payment.gateway_authorization_id is not None
        if operation.kind is OperationKind.CAPTURE:
            return await self._gateway.capture(
                idempotency_key=key,
                gateway_id=payment.gateway_authorization_id,
                amount=operation.amount,
            )
        return await self._gateway.void(
            idempotency_key=key, gateway_id=payment.gateway_authorization_id
        )

    async def _apply(self, item: ClaimedOperation, result: GatewayResult, call: CallRecord) -> None:
        operation = item.operation
        async with self._unit_of_work() as uow:
            payment = await uow.payments.get(operation.payment_id, for_update=True)
            assert payment is not None
            await uow.operations.record_call(payment.id, call)
            match result:
                case Approved():
                    self._succeeded(payment, operation.kind, result)
                    await uow.operations.finish(item.id, succeeded=True)
                case Declined():
                    if operation.kind is OperationKind.AUTHORIZE:
                        payment.authorization_failed("payment_declined", result.code)
                    else:
                        log.error(
                            "gateway refused %s", operation.kind.value, extra={"error": result.code}
                        )
                    await uow.operations.finish(item.id, succeeded=False, error=result.code)
                case Unavailable():
                    if item.attempts < self._max_attempts:
                        await uow.operations.retry_later(
                            item.id, self._backoff(item.attempts), result.error
                        )
                    else:
                        log.error(
                            "gateway unavailable, giving up %s",
                            operation.kind.value,
                            extra={"attempts": item.attempts, "error": result.error},
                        )
                        if operation.kind is OperationKind.AUTHORIZE:
                            payment.authorization_failed("payment_unavailable")
                        await uow.operations.finish(item.id, succeeded=False, error=result.error)
            await commit_payment(uow, payment)

    @staticmethod
    def _succeeded(payment: Payment, kind: OperationKind, result: Approved) -> None:
        if kind is OperationKind.AUTHORIZE:
            payment.authorization_approved(result.gateway_id)
        elif kind is OperationKind.CAPTURE:
            payment.capture_succeeded(result.amount)
        else:
            payment.void_succeeded()

    def _backoff(self, attempts: int) -> timedelta:
        delay = min(self._retry_base_delay * 2 ** (attempts - 1), 30.0)
        return timedelta(seconds=delay * random.uniform(0.8, 1.2))
