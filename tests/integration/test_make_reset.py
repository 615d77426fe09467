"""`make reset` starts again from an empty, migrated database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from pathlib import Path

import asyncpg
import pytest

from oms_devtools import infra
from oms_runtime.db import libpq_url

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


async def test_make_reset_drops_everything_and_migrates_afresh() -> None:
    base = os.environ.get("OMS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")
    url = f"{base.rstrip('/')}/oms_reset_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "OMS_DATABASE_URL": url}
    try:
        infra.migrate_all(env)
        connection = await asyncpg.connect(libpq_url(url))
        try:
            await connection.execute(
                "INSERT INTO inventory.products (sku, name, unit_price, currency) "
                "VALUES ('OLD-1', 'Old', 100, 'EUR')"
            )
        finally:
            await connection.close()

        result = await asyncio.to_thread(
            subprocess.run,
            ["make", "--no-print-directory", "reset"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=300,
        )

        assert result.returncode == 0, result.stderr.decode()
        connection = await asyncpg.connect(libpq_url(url))
        try:
            assert await connection.fetchval("SELECT count(*) FROM inventory.products") == 0
            for schema in ("orders", "inventory", "payment", "shipping"):
                assert await connection.fetchval(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
                    schema,
                )
        finally:
            await connection.close()
    finally:
        await infra.drop_database(url)
