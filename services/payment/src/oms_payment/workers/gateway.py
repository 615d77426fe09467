"""Carries out queued gateway operations (authorize, capture, void, refund).

Operations live in Postgres, so they survive a crash and any replica may pick them
up. One queued by this process is leased to it when it is written (see the payment
repository) and handed to this worker once its transaction commits: the worker
starts it at once, with no claim of its own. Every `poll_interval` the worker also
sweeps the table for due operations nobody is carrying out (a retry whose time
came, or one whose lease ran out because its process died), claiming them with
`FOR UPDATE SKIP LOCKED` and a fresh lease. The gateway is called outside any
transaction; its answer is then applied to the payment (`apply_gateway_answer`: what
an answer means is the payment's business) in one unit of work that also records the
call for audit and publishes the resulting events.

Answers are applied by one task, like a consumer's deliveries: the answers that came
in while it was busy (up to `apply_batch_size`) share one transaction, whose payments
are read and locked in one statement, instead of a transaction each. If that
transaction fails, each answer is applied in a transaction of its own, as if it had
come alone; an answer that cannot be applied leaves its operation to the sweep once
its lease runs out, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from oms_payment.db.repository import ClaimedOperation, load_payments_by_id
from oms_payment.db.unit_of_work import SqlPaymentUnitOfWork
from oms_payment.domain.model import GaveUp, OperationKind
from oms_payment.gateway.base import (
    Approved,
    CallRecord,
    Declined,
    GatewayResult,
    PaymentGateway,
    Unavailable,
)
from oms_runtime import tracing
from oms_runtime.logging import log_context
from oms_runtime.messaging.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)


def lease_for(timeout_seconds: float) -> timedelta:
    """Longer than any single call can take, so a live worker keeps its claim."""
    return timedelta(seconds=timeout_seconds * 2 + 5)


class LeasedOperations:
    """Where committed transactions leave the operations they leased to this process
    (before the worker that carries them out exists, hence its own object)."""

    def __init__(self) -> None:
        self.waiting: deque[ClaimedOperation] = deque()
        self.arrived = asyncio.Event()

    def put(self, operations: list[ClaimedOperation]) -> None:
        self.waiting.extend(operations)
        self.arrived.set()


@dataclass
class _Answer:
    item: ClaimedOperation
    result: GatewayResult
    calls: list[CallRecord]
    applied: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def settle(self, error: BaseException | None = None) -> None:
        if self.applied.done():  # its caller was cancelled (stopping)
            return
        if error is None:
            self.applied.set_result(None)
        else:
            self.applied.set_exception(error)


class GatewayWorker:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory[SqlPaymentUnitOfWork],
        gateway: PaymentGateway,
        leased: LeasedOperations,
        *,
        timeout_seconds: float,
        max_attempts: int,
        retry_base_delay: float,
        concurrency: int,
        poll_interval: float = 1.0,
        apply_batch_size: int = 16,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._gateway = gateway
        self._max_attempts = max_attempts
        self._retry_base_delay = retry_base_delay
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        self._timeout = timedelta(seconds=timeout_seconds)
        self._lease = lease_for(timeout_seconds)
        self._handed = leased.waiting
        # Set by a hand-over, a freed slot or stop().
        self._wakeup = leased.arrived
        self._running: set[asyncio.Task[None]] = set()
        # Whether due operations may have been left behind for want of a free slot.
        self._left_work_behind = True
        self._stopping = False
        self._answers: deque[_Answer] = deque()
        self._answered = asyncio.Event()
        self._apply_batch_size = max(1, apply_batch_size)

    async def run(self) -> None:
        next_sweep = 0.0
        applier = asyncio.create_task(self._apply_answers(), name="apply gateway answers")
        try:
            while not self._stopping:
                # Cleared before looking for work, so a hand-over meanwhile wakes us.
                self._wakeup.clear()
                self._start_handed()
                if time.monotonic() >= next_sweep or self._left_work_behind:
                    free = self._concurrency - len(self._running)
                    claimed = await self._claim_safely(free) if free > 0 else []
                    self._left_work_behind = free <= 0 or len(claimed) >= free
                    for item in claimed:
                        self._start(item)
                    next_sweep = time.monotonic() + self._poll_interval
                with contextlib.suppress(TimeoutError):
                    timeout = max(0.0, next_sweep - time.monotonic())
                    await asyncio.wait_for(self._wakeup.wait(), timeout)
            if self._running:
                await asyncio.wait(self._running, timeout=10.0)
        finally:
            applier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await applier
            # Answers nobody will apply now: their calls end, and their operations'
            # leases run out for the next process's sweep.
            while self._answers:
                self._answers.popleft().applied.cancel()
            await self._gateway.close()

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    def _start_handed(self) -> None:
        # One whose lease would run out before its call could end is left to a
        # sweep (it claims it afresh), so no two workers ever call for it at once.
        latest_start = datetime.now(UTC) + self._timeout
        while self._handed and len(self._running) < self._concurrency:
            item = self._handed.popleft()
            if item.leased_until > latest_start:
                self._start(item)

    def _start(self, item: ClaimedOperation) -> None:
        task = asyncio.create_task(self._execute(item))
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        # A freed slot only matters if work is waiting for one.
        if self._handed or self._left_work_behind or self._stopping:
            self._wakeup.set()

    async def _claim_safely(self, free: int) -> list[ClaimedOperation]:
        try:
            async with self._unit_of_work() as uow:
                claimed = await uow.operations.claim_due(free, self._lease)
                await uow.commit()
                return claimed
        except Exception as exc:  # keep the worker alive through a database outage
            log.warning("claiming gateway operations failed", extra={"error": repr(exc)})
            await asyncio.sleep(1.0)
            return []

    @contextlib.contextmanager
    def _about(self, item: ClaimedOperation, step: str) -> Iterator[None]:
        with (
            tracing.span(
                f"{step} {item.operation.kind.value}", tracing.parse_traceparent(item.traceparent)
            ),
            log_context(
                correlation_id=item.order_id,
                payment_id=item.operation.payment_id,
                operation=item.operation.kind.value,
            ),
        ):
            yield

    async def _execute(self, item: ClaimedOperation) -> None:
        with self._about(item, "gateway"):
            try:
                result, calls = await self._call_within_budget(item)
                answer = _Answer(item, result, calls)
                self._answers.append(answer)
                self._answered.set()
                await answer.applied
            except Exception:
                # Applying the answer failed (e.g. the database went away): the lease
                # runs out and a sweep retries with the same key, counting an attempt.
                log.exception("gateway operation failed unexpectedly")

    async def _call_within_budget(
        self, item: ClaimedOperation
    ) -> tuple[GatewayResult, list[CallRecord]]:
        """The gateway's answer, or Unavailable when the call itself blew up (a bug,
        a value the client cannot send): counted against the attempts like an
        outage, so the operation ends failed after its budget instead of being
        retried for ever. An operation a sweep took after its budget ran out (its
        answers could not be applied) gives up without calling again."""
        if item.attempts > self._max_attempts:
            return Unavailable(f"gave up after {item.attempts - 1} attempts"), []
        try:
            return await self._call(item)
        except Exception as exc:
            log.exception(
                "gateway call raised unexpectedly",
                extra={"attempts": item.attempts, "error": repr(exc)},
            )
            return Unavailable(f"unexpected error: {type(exc).__name__}: {exc}"), []

    async def _call(self, item: ClaimedOperation) -> tuple[GatewayResult, list[CallRecord]]:
        operation = item.operation
        key = operation.idempotency_key
        gateway_id = item.gateway_authorization_id or ""
        match operation.kind:
            case OperationKind.AUTHORIZE:
                result, call = await self._gateway.authorize(
                    idempotency_key=key,
                    amount=operation.amount,
                    currency=item.currency,
                    token=item.token,
                    reference=operation.payment_id,
                )
            case OperationKind.CAPTURE:
                result, call = await self._gateway.capture(
                    idempotency_key=key,
                    gateway_id=gateway_id,
                    amount=operation.amount,
                    final=operation.final,
                )
            case OperationKind.VOID:
                result, call = await self._gateway.void(idempotency_key=key, gateway_id=gateway_id)
            case OperationKind.RELEASE_OLD_HOLD:
                result, call = await self._gateway.void(
                    idempotency_key=key, gateway_id=operation.reference or ""
                )
            case OperationKind.REFUND:
                result, call = await self._gateway.refund(
                    idempotency_key=key, gateway_id=gateway_id, amount=operation.amount
                )
            case OperationKind.RECONCILE:
                return await self._release_orphan_holds(operation.payment_id)
        return result, [call]

    async def _release_orphan_holds(
        self, payment_id: str
    ) -> tuple[GatewayResult, list[CallRecord]]:
        """Void every hold the gateway placed for this payment although we never got
        its answer (the authorization was given up)."""
        holds, lookup = await self._gateway.holds_for(payment_id)
        if holds is None:
            return Unavailable(lookup.error or "lookup failed"), [lookup]
        calls = [lookup]
        for gateway_id in holds:
            result, call = await self._gateway.void(
                idempotency_key=f"{payment_id}:void:{gateway_id}", gateway_id=gateway_id
            )
            calls.append(call)
            if not isinstance(result, Approved):
                return result, calls
            log.warning(
                "released a hold whose authorization answer was lost",
                extra={"gateway_id": gateway_id},
            )
        return Approved("", 0), calls

    async def _apply_answers(self) -> None:
        batch: list[_Answer] = []
        try:
            while True:
                await self._answered.wait()
                self._answered.clear()
                while self._answers:
                    count = min(len(self._answers), self._apply_batch_size)
                    batch = [self._answers.popleft() for _ in range(count)]
                    if len(batch) == 1 or not await self._applied_together(batch):
                        for answer in batch:
                            await self._apply_alone(answer)
        finally:
            # Stopped while applying: what was not applied is left to the sweep.
            for answer in batch:
                if not answer.applied.done():
                    answer.applied.cancel()

    async def _applied_together(self, batch: list[_Answer]) -> bool:
        """Apply the answers in one transaction; False if it had to be rolled back
        (nothing of it is kept then)."""
        try:
            async with self._unit_of_work.shared_transaction() as shared:
                await shared.begin()
                await load_payments_by_id(
                    shared, [answer.item.operation.payment_id for answer in batch]
                )
                for answer in batch:
                    with self._about(answer.item, "apply"):
                        async with self._unit_of_work.within(shared) as uow:
                            await self._apply(uow, answer.item, answer.result, answer.calls)
                await shared.commit()
        except Exception as exc:
            log.info(
                "applying %d gateway answers one by one", len(batch), extra={"cause": repr(exc)}
            )
            return False
        for answer in batch:
            answer.settle()
        return True

    async def _apply_alone(self, answer: _Answer) -> None:
        try:
            with self._about(answer.item, "apply"):
                async with self._unit_of_work() as uow:
                    await self._apply(uow, answer.item, answer.result, answer.calls)
        except Exception as exc:
            answer.settle(exc)
        else:
            answer.settle()

    async def _apply(
        self,
        uow: SqlPaymentUnitOfWork,
        item: ClaimedOperation,
        result: GatewayResult,
        calls: list[CallRecord],
    ) -> None:
        operation = item.operation
        payment = await uow.payments.get(operation.payment_id, for_update=True)
        assert payment is not None
        for call in calls:
            uow.operations.record_call(payment.id, call)
        match result:
            case Approved():
                payment.apply_gateway_answer(operation, result)
                uow.operations.finish(item.id, succeeded=True)
            case Declined():
                log.warning(
                    "gateway refused %s", operation.kind.value, extra={"error": result.code}
                )
                payment.apply_gateway_answer(operation, result)
                uow.operations.finish(item.id, succeeded=False, error=result.code)
            case Unavailable() if item.attempts < self._max_attempts:
                await uow.operations.retry_later(
                    item.id, self._backoff(item.attempts), result.error
                )
            case Unavailable():
                log.error(
                    "gateway unavailable, giving up %s",
                    operation.kind.value,
                    extra={"attempts": item.attempts, "error": result.error},
                )
                payment.apply_gateway_answer(operation, GaveUp(result.error, result.answered))
                uow.operations.finish(item.id, succeeded=False, error=result.error)
        await uow.commit()

    def _backoff(self, attempts: int) -> timedelta:
        delay = min(self._retry_base_delay * (1 << (attempts - 1)), 30.0)
        return timedelta(seconds=delay * random.uniform(0.8, 1.2))
