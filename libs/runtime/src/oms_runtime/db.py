from __future__ import annotations

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
    return create_async_engine(
        sqlalchemy_url(settings.database_url),
        pool_size=settings.db_pool_size,
        # A burst may borrow a few more; Postgres' connection limit is shared by
        # every replica of every service, so the ceiling stays low.
        max_overflow=settings.db_pool_size // 2,
        pool_pre_ping=True,
        connect_args={"server_settings": {"application_name": application_name}},
    )
