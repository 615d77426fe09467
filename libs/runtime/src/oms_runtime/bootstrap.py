"""Builds a service process from its parts: the one composition root every service
calls from its `main.create_app`, so wiring is not repeated per service."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from oms_contracts import Message
from oms_runtime.db import create_engine
from oms_runtime.http import add_edge_middleware, create_service_app
from oms_runtime.limits import BodySizeLimit
from oms_runtime.messaging.consumer import Handler
from oms_runtime.messaging.events import EventMap
from oms_runtime.messaging.tables import MessagingTables
from oms_runtime.messaging.unit_of_work import BatchLoader, UnitOfWork, UnitOfWorkFactory
from oms_runtime.problems import ErrorProblems, document_problems, install_error_problems
from oms_runtime.ratelimit import TokenBuckets
from oms_runtime.service import BackgroundWorker, GaugeCollector, ServiceRuntime
from oms_runtime.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)
U = TypeVar("U", bound=UnitOfWork)


@dataclass(frozen=True)
class ServiceContext(Generic[S, U]):
    """What a service's own extras (workers, route state) are built from."""

    settings: S
    engine: AsyncEngine
    unit_of_work: UnitOfWorkFactory[U]


def build_service(
    *,
    name: str,
    title: str,
    description: str,
    settings: S,
    tables: MessagingTables,
    unit_of_work: Callable[..., U],
    handlers: Mapping[type[Message], Handler],
    events: EventMap[Any, Any],
    problems: ErrorProblems,
    routers: Sequence[APIRouter],
    workers: Callable[[ServiceContext[S, U]], Sequence[BackgroundWorker]] = lambda _: (),
    state: Callable[[ServiceContext[S, U]], dict[str, Any]] = lambda _: {},
    gauge_collectors: Sequence[GaugeCollector] = (),
    batch_loader: BatchLoader | None = None,
) -> FastAPI:
    engine = create_engine(settings, name)
    context = ServiceContext(
        settings, engine, UnitOfWorkFactory(unit_of_work, engine, tables, batch_loader, events)
    )
    runtime = ServiceRuntime(
        name=name,
        settings=settings,
        engine=engine,
        tables=tables,
        queue=f"oms.{name}",
        handlers=handlers,
        unit_of_work=context.unit_of_work,
        workers=workers(context),
        gauge_collectors=gauge_collectors,
    )
    app = create_service_app(
        title=title,
        description=description,
        settings=settings,
        runtime=runtime,
        routers=routers,
        state={"unit_of_work": context.unit_of_work, **state(context)},
    )
    install_error_problems(app, problems)
    document_problems(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    add_edge_middleware(app, settings)
    if settings.rate_limit_per_second > 0:
        app.state.rate_limits = TokenBuckets(
            settings.rate_limit_per_second, settings.rate_limit_burst
        )
    return app
