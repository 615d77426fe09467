"""The command line every service shares: `python -m oms_<service> [serve|migrate|relay]`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import importlib.util
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import uvicorn

from oms_runtime import tracing
from oms_runtime.db import create_engine, libpq_url
from oms_runtime.logging import configure_logging
from oms_runtime.messaging.broker import Broker
from oms_runtime.messaging.queues import migrate
from oms_runtime.messaging.relay import OutboxRelay
from oms_runtime.messaging.tables import MessagingTables
from oms_runtime.migrations import upgrade_to_head
from oms_runtime.settings import ServiceSettings, WeakSecrets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceDefinition:
    """A service package `oms_<name>` laid out as usual: `main.create_app`, its
    Alembic environment in `db/migrations`."""

    name: str
    settings: Callable[[], ServiceSettings]
    tables: MessagingTables

    @property
    def package(self) -> str:
        return f"oms_{self.name}"

    @property
    def app_factory(self) -> str:
        return f"{self.package}.main:create_app"

    @property
    def migrations_dir(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        assert spec is not None and spec.origin is not None
        return Path(spec.origin).parent / "db" / "migrations"


def main(service: ServiceDefinition, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m oms_{service.name}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="HTTP API, consumer, outbox relay (default)")
    serve.add_argument("--port", type=int)
    serve.add_argument("--host")
    sub.add_parser("migrate", help="create the database/schema and apply migrations")
    sub.add_parser("relay", help="run only the outbox relay")
    sub.add_parser(
        "migrate-queues",
        help="with the service stopped: move its queues to OMS_QUEUE_TYPE (classic|quorum)",
    )
    args = parser.parse_args(argv)

    settings = service.settings()
    configure_logging(service.name, settings.log_level, settings.log_format)
    tracing.configure(service.name, settings.otel_enabled)
    tune_garbage_collection(settings.gc_young_threshold)
    if args.command == "migrate":
        upgrade_to_head(service.migrations_dir, settings.database_url)
    elif args.command == "relay":
        asyncio.run(_run_relay(service, settings))
    elif args.command == "migrate-queues":
        asyncio.run(_migrate_queues(service, settings))
    else:
        host = getattr(args, "host", None) or settings.host
        try:
            settings.refuse_weak_secrets(host)
        except WeakSecrets as exc:
            log.critical("%s", exc)
            sys.exit(f"oms_{service.name}: {exc}")
        uvicorn.run(
            service.app_factory,
            factory=True,
            host=host,
            port=getattr(args, "port", None) or settings.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=20,
            ssl_certfile=settings.tls_cert_file,
            ssl_keyfile=settings.tls_key_file,
        )


def tune_garbage_collection(young_threshold: int) -> None:
    """Collect the youngest generation after `young_threshold` allocations instead
    of Python's 700 (the older generations' thresholds stay as they are)."""
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, oldest)


async def _run_relay(service: ServiceDefinition, settings: ServiceSettings) -> None:
    engine = create_engine(settings, f"{service.name}-relay")
    broker = Broker(settings.amqp_url, f"{service.name}-relay")
    relay = OutboxRelay(
        engine,
        service.tables,
        broker,
        listen_dsn=libpq_url(settings.database_url),
        batch_size=settings.relay_batch_size,
        poll_interval=settings.relay_poll_interval,
        grace=settings.relay_grace_seconds,
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await broker.connect()
    task = asyncio.create_task(relay.run())
    await stop.wait()
    await relay.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 10.0)
    await broker.close()
    await engine.dispose()


async def _migrate_queues(service: ServiceDefinition, settings: ServiceSettings) -> None:
    # The service's own wiring says which queues it has and what they are bound to
    # (building it connects to nothing).
    module, _, factory = service.app_factory.partition(":")
    app = getattr(importlib.import_module(module), factory)()
    consumer = app.state.runtime.consumer
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        moved = await migrate(connection, consumer.queues, consumer.routing_keys)
    for name, count in moved.items():
        print(f"{name}: now {settings.queue_type}, {count} message(s) moved")
    if not moved:
        print(f"every queue of {service.name} is {settings.queue_type} already")
