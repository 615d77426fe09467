"""The throughput floor: the ceiling arithmetic, and a small run of the CLI against
the real broker, database and gateway simulator (it must clean up after itself)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from oms_devtools.floor import Cost, Shape, ceiling

pytestmark = pytest.mark.integration


def test_the_ceiling_is_the_cores_over_the_cpu_an_order_needs_at_least() -> None:
    message = Cost(client_ms=0.25, server_ms=0.2, kernel_ms=0.05)  # 0.5 ms
    transaction = Cost(client_ms=0.1, server_ms=0.1, kernel_ms=0.05)  # 0.25 ms
    request = Cost(client_ms=0.6, server_ms=0.3, kernel_ms=0.1)  # 1 ms
    shape = Shape(messages=10, transactions=12, requests=2, what="")

    result = ceiling(message, transaction, request, shape, cores=2)

    # 10 * 0.5 + 12 * 0.25 + 2 * 1 = 10 ms of CPU per order; 2 cores = 2000 ms/s.
    assert result["cpu_ms_per_order"] == pytest.approx(10.0)
    assert result["max_orders_per_second"] == pytest.approx(200.0)


DATABASE_BASE = os.environ.get("OMS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")
AMQP_BASE = os.environ.get("OMS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")


async def database_exists(name: str) -> bool:
    connection = await asyncpg.connect(f"{DATABASE_BASE.rstrip('/')}/postgres")
    try:
        return bool(await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await connection.close()


def vhosts() -> list[str]:
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_vhosts", "--no-table-headers"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return listed.stdout.split()


async def test_the_floor_measures_each_primitive_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    out = tmp_path / "floor.json"

    finished = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "oms_devtools.floor",
            # Enough of each that every side's CPU spans several of /proc's 10 ms
            # ticks even on a fast hour of the VM (40 requests once read as 0 ms).
            "--messages=800",
            "--transactions=800",
            "--requests=400",
            "--concurrency=2",
            "--batch=4",
            "--per-transaction=2",
            f"--out={out}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "OMS_BENCH_DATABASE_URL": DATABASE_BASE,
            "OMS_BENCH_AMQP_URL": AMQP_BASE,
        },
    )

    assert finished.returncode == 0, finished.stderr
    report = json.loads(out.read_text())
    assert report["settings"]["per_transaction"] == 2
    for primitive in ("message", "transaction", "request"):
        # The client and the server both do work for each; nothing is free.
        assert report[primitive]["client_ms"] > 0
        assert report[primitive]["server_ms"] > 0
    per_message = report["message"]["total_ms"]
    per_transaction = report["transaction"]["total_ms"]
    per_request = report["request"]["total_ms"]
    for name, shape in report["shapes"].items():
        expected = (
            shape["messages"] * per_message
            + shape["transactions"] * per_transaction
            + shape["requests"] * per_request
        )
        assert shape["cpu_ms_per_order"] == pytest.approx(expected), name
        assert shape["max_orders_per_second"] == pytest.approx(report["cores"] * 1000 / expected), (
            name
        )
    assert "this saga" in finished.stdout and "orders/s" in finished.stdout
    # Its own database and vhost (others may be running a floor of their own).
    scratch = report["scratch"]
    assert scratch["database"].startswith("oms_floor_")
    assert not await database_exists(scratch["database"])
    assert scratch["vhost"] not in await asyncio.to_thread(vhosts)
