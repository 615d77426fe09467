from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from oms_runtime.settings import ServiceSettings


def sqlalchemy_url(url: str) -> str:
    """`postgresql://...` as configured -> the asyncpg dialect SQLAlchemy needs."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The configured URL without a SQLAlchemy driver suffix (for raw asyncpg)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(settings: ServiceSettings, application_name: str) -> AsyncEngine:
    # No pre-ping: it costs a round trip per transaction. A connection found dead
    # fails its one transaction (retried by the consumer, a 503 over HTTP), and
    # SQLAlchemy then recycles every connection the pool held before.
    return create_async_engine(
        sqlalchemy_url(settings.database_url),
        pool_size=settings.db_pool_size,
        # No overflow: connections opened for a burst and closed after it cost more
        # than waiting for a pooled one; Postgres' connection limit is shared by
        # every replica of every service.
        max_overflow=0,
        connect_args={
            "timeout": settings.db_timeout_seconds,
            "command_timeout": settings.db_timeout_seconds,
            "server_settings": {
                "application_name": application_name,
                # The services' statements find rows by key, and they run as prepared
                # statements whose plans Postgres keeps: a sequential scan chosen while
                # a table was young (or its statistics stale) would then read the
                # whole, growing table for every message until the next ANALYZE
                # (measured: 14 instead of 7.5 ms of Postgres CPU per order a minute
                # into a benchmark). Discouraged, not forbidden: a query without a
                # usable index still scans.
                "enable_seqscan": "off",
            },
        },
        # JSONB columns (lines, history details, message headers) are on every hot
        # path; orjson encodes and decodes them several times faster than json.
        json_serializer=_dump_json,
        json_deserializer=orjson.loads,
    )


def _dump_json(value: Any) -> str:
    return orjson.dumps(value).decode()
