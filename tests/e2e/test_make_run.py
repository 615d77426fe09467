"""`make run` as a newcomer uses it: everything comes up, the tokens it writes work,
and Ctrl-C ends it quietly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from oms_devtools import infra
from oms_devtools.stack import free_port_block

pytestmark = [pytest.mark.e2e, pytest.mark.single_pass]

ROOT = Path(__file__).resolve().parents[2]


async def test_make_run_serves_every_service_writes_working_tokens_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    name, database_url, amqp_url = infra.throwaway_urls("oms_makerun")
    infra.create_vhost(name)
    port = free_port_block(6)
    ports = {
        "ORDER": port,
        "INVENTORY": port + 1,
        "PAYMENT": port + 2,
        "SHIPPING": port + 3,
        "GATEWAY": port + 4,
        "CONSOLE": port + 5,
    }
    env_file = tmp_path / "run.env"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OMS_")},
        "OMS_DATABASE_URL": database_url,
        "OMS_AMQP_URL": amqp_url,
        "OMS_RUN_ENV_FILE": str(env_file),
        "OMS_GATEWAY_URL": f"http://127.0.0.1:{ports['GATEWAY']}",
        **{f"OMS_{service}_PORT": str(number) for service, number in ports.items()},
        **{
            f"OMS_{service}_URL": f"http://127.0.0.1:{ports[service]}"
            for service in ("ORDER", "INVENTORY", "PAYMENT", "SHIPPING")
        },
    }
    output = tmp_path / "make-run.log"
    with output.open("wb") as log:
        # A terminal's Ctrl-C goes to the whole foreground process group: make's own.
        running = await asyncio.create_subprocess_exec(
            "make",
            "--no-print-directory",
            "run",
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while not env_file.exists() or "TOKEN=" not in env_file.read_text():
            assert running.returncode is None, output.read_text()[-3000:]
            assert time.monotonic() < deadline, output.read_text()[-3000:]
            await asyncio.sleep(0.5)
        tokens = dict(
            line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines()
        )
        async with httpx.AsyncClient(timeout=5) as http:
            mine = await http.get(
                f"http://127.0.0.1:{ports['ORDER']}/orders",
                headers={"Authorization": f"Bearer {tokens['TOKEN']}"},
            )
            assert mine.status_code == 200, mine.text
            locations = await http.get(
                f"http://127.0.0.1:{ports['INVENTORY']}/locations",
                headers={"Authorization": f"Bearer {tokens['ADMIN']}"},
            )
            assert locations.status_code == 200, locations.text
            console = await http.get(f"http://127.0.0.1:{ports['CONSOLE']}/sign-in")
            assert console.status_code == 200
        banner = output.read_text()
        assert f"http://127.0.0.1:{ports['CONSOLE']}" in banner
        assert f"source {env_file}" in banner

        os.killpg(running.pid, signal.SIGINT)
        returncode = await asyncio.wait_for(running.wait(), 60)
    finally:
        if running.returncode is None:
            # honcho starts each process in a session of its own: only honcho can
            # stop them, so a failed test still ends it with a Ctrl-C first (a
            # SIGKILL of make's group alone would leave the whole stack running).
            os.killpg(running.pid, signal.SIGINT)
            try:
                await asyncio.wait_for(running.wait(), 60)
            except TimeoutError:
                os.killpg(running.pid, signal.SIGKILL)
                await running.wait()
        await infra.drop_database(database_url)
        infra.delete_vhost(name)

    said = output.read_text()
    # make itself takes the Ctrl-C too (it dies of it, as a program interrupted at a
    # terminal does), but the recipe ends cleanly: no "make: *** ... Error 143".
    assert returncode in (0, -signal.SIGINT), (returncode, said[-3000:])
    assert "***" not in said and "Error 1" not in said, said[-3000:]
    assert said.count("stopped cleanly") >= 4, said[-3000:]
    for number in ports.values():  # every process of the stack is gone
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", number)) != 0, f"port {number} still open"
