"""Throwaway databases and RabbitMQ vhosts, so tests never touch `make run`'s data."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Mapping

import asyncpg
from sqlalchemy.engine import make_url

from oms_runtime.db import libpq_url

SERVICES = ("order", "inventory", "payment", "shipping")


def throwaway_urls(prefix: str) -> tuple[str, str, str]:
    """A fresh name (`<prefix>_<random>`) and the URLs of a database and a vhost by
    that name on the local servers (or those of OMS_BENCH_DATABASE_URL and
    OMS_BENCH_AMQP_URL); nothing is created yet."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    database_base = os.environ.get("OMS_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")
    amqp_base = os.environ.get("OMS_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
    return name, f"{database_base.rstrip('/')}/{name}", f"{amqp_base.rstrip('/')}/{name}"


def _rabbitmqctl(*args: str) -> None:
    if shutil.which("rabbitmqctl") is None:
        raise RuntimeError("rabbitmqctl is needed to create the test vhost")
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def create_vhost(vhost: str, user: str = "guest") -> None:
    delete_vhost(vhost)
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")


def delete_vhost(vhost: str) -> None:
    with contextlib.suppress(subprocess.CalledProcessError):  # it did not exist
        _rabbitmqctl("delete_vhost", vhost)


async def _admin_connection(database_url: str) -> tuple[asyncpg.Connection, str]:
    url = make_url(libpq_url(database_url))
    admin_url = url.set(database="postgres").render_as_string(hide_password=False)
    return await asyncpg.connect(admin_url), str(url.database)


async def recreate_database(database_url: str) -> None:
    await drop_database(database_url)
    connection, name = await _admin_connection(database_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(database_url: str) -> None:
    connection, name = await _admin_connection(database_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def migrate_all(env: Mapping[str, str]) -> None:
    for service in SERVICES:
        subprocess.run(
            [sys.executable, "-m", f"oms_{service}", "migrate"],
            check=True,
            env={**os.environ, **env},
            capture_output=True,
            timeout=120,
        )
