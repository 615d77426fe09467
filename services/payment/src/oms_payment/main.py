"""Composition root of the payment service."""

from __future__ import annotations

import functools

from fastapi import FastAPI

from oms_payment.api.problems import PROBLEMS
from oms_payment.api.routes import router
from oms_payment.db.repository import load_payments_for_batch
from oms_payment.db.tables import messaging
from oms_payment.db.unit_of_work import SqlPaymentUnitOfWork
from oms_payment.gateway.circuit import CircuitBreaker
from oms_payment.gateway.http import HttpPaymentGateway
from oms_payment.handlers.messages import HANDLERS
from oms_payment.handlers.outgoing import PaymentEvents
from oms_payment.settings import PaymentSettings
from oms_payment.workers.gateway import GatewayWorker, LeasedOperations, lease_for
from oms_runtime.bootstrap import ServiceContext, build_service
from oms_runtime.service import BackgroundWorker


def create_app(settings: PaymentSettings | None = None) -> FastAPI:
    settings = settings or PaymentSettings()
    # Operations a transaction queues are leased to this process and handed to its
    # gateway worker once committed.
    leased = LeasedOperations()

    def gateway_worker(
        context: ServiceContext[PaymentSettings, SqlPaymentUnitOfWork],
    ) -> list[BackgroundWorker]:
        return [
            GatewayWorker(
                context.unit_of_work,
                HttpPaymentGateway(
                    settings.gateway_url,
                    settings.gateway_timeout_seconds,
                    CircuitBreaker(
                        settings.gateway_breaker_failures, settings.gateway_breaker_reset_seconds
                    ),
                    max_connections=settings.gateway_concurrency,
                    ca_file=settings.gateway_ca_file,
                    keepalive_seconds=settings.gateway_keepalive_seconds,
                ),
                leased,
                timeout_seconds=settings.gateway_timeout_seconds,
                max_attempts=settings.gateway_max_attempts,
                retry_base_delay=settings.gateway_retry_base_delay,
                concurrency=settings.gateway_concurrency,
            )
        ]

    return build_service(
        name="payment",
        title="OMS payment",
        description="Payments of orders: authorization, capture, void (admin API).",
        settings=settings,
        tables=messaging,
        unit_of_work=functools.partial(
            SqlPaymentUnitOfWork,
            operations_leased=leased.put,
            lease=lease_for(settings.gateway_timeout_seconds),
        ),
        handlers=HANDLERS,
        batch_loader=load_payments_for_batch,
        events=PaymentEvents(),
        problems=PROBLEMS,
        routers=[router],
        workers=gateway_worker,
    )
