"""The README's curl walk-throughs work as written, against the real services."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path

import pytest

from oms_devtools.client import OmsClient

from .helpers import dispatch_and_wait_for_capture, fulfilling_order

pytestmark = [pytest.mark.e2e, pytest.mark.single_pass]

README = Path(__file__).resolve().parents[2] / "README.md"
PORTS = {"8000": "order", "8001": "inventory", "8002": "payment", "8003": "shipping"}


def walk_through(heading: str) -> str:
    """The first bash block after `heading`, pointed at localhost's default ports."""
    text = README.read_text()
    start = text.index("```bash\n", text.index(heading)) + len("```bash\n")
    return text[start : text.index("\n```", start)]


def against(script: str, oms: OmsClient) -> str:
    return re.sub(
        r"localhost:(800[0-3])", lambda m: oms.urls[PORTS[m.group(1)]].split("//")[1], script
    )


async def run(script: str, oms: OmsClient, **variables: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "ADMIN": oms.admin_token, "TOKEN": oms.token(), **variables}
    return await asyncio.to_thread(
        subprocess.run,
        ["bash", "-euo", "pipefail", "-c", against(script, oms)],
        env=env,
        capture_output=True,
        timeout=120,
    )


async def test_the_split_order_walk_through_ships_two_parcels_from_two_locations(
    oms: OmsClient,
) -> None:
    ran = await run(walk_through("## A split order"), oms)

    assert ran.returncode == 0, ran.stderr.decode() + ran.stdout.decode()
    out = ran.stdout.decode()
    assert "BER [{'sku': 'MUG-2', 'quantity': 1}] created" in out
    assert "PAR [{'sku': 'TEA-1', 'quantity': 2}] created" in out
    stock = await oms.stock_at("TEA-1")
    assert stock["PAR"]["on_hand"] == 8
    assert (await oms.stock_at("MUG-2"))["BER"]["on_hand"] == 9


async def test_the_return_walk_through_refunds_a_damaged_mug(oms: OmsClient) -> None:
    await oms.create_product(on_hand=10, unit_price=1250, sku="MUG-1")
    order_id, _ = await fulfilling_order(oms, [("MUG-1", 2)])
    await dispatch_and_wait_for_capture(oms, order_id)

    ran = await run(walk_through("## A return with curl"), oms, ORDER_ID=order_id)

    assert ran.returncode == 0, ran.stderr.decode() + ran.stdout.decode()
    lines = ran.stdout.decode().splitlines()
    assert lines[-2:] == ["2500 1250", "8 1"]
