"""Printed by `make run` once every service answers: where to point curl, and tokens."""

from __future__ import annotations

import asyncio
import os

import httpx

from oms_runtime.auth import mint_token
from oms_runtime.settings import ServiceSettings

SERVICES = {"order": 8000, "inventory": 8001, "payment": 8002, "shipping": 8003}


async def _wait_until_ready(client: httpx.AsyncClient, urls: dict[str, str]) -> None:
    for url in urls.values():
        while True:
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)


async def main() -> None:
    settings = ServiceSettings()
    ports = {
        name: int(os.environ.get(f"OMS_{name.upper()}_PORT", default))
        for name, default in SERVICES.items()
    }
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    async with httpx.AsyncClient(timeout=2.0) as client:
        await _wait_until_ready(client, urls)
    admin = mint_token(settings.jwt_secret, "ops", "admin", ttl_seconds=7 * 24 * 3600)
    customer = mint_token(settings.jwt_secret, "alice", "customer", ttl_seconds=7 * 24 * 3600)
    width = 78
    print("=" * width)
    print(" OMS is up. API docs:")
    for name, url in urls.items():
        print(f"   {name:<10} {url}/docs")
    print(
        f"   gateway    {os.environ.get('OMS_GATEWAY_URL', 'http://127.0.0.1:8090')}  (simulator)"
    )
    print(
        "\n Tokens (valid 7 days; mint more with `.venv/bin/oms-token --sub NAME [--role admin]`):"
    )
    print(f"   export ADMIN={admin}")
    print(f"   export TOKEN={customer}")
    console_url = f"http://127.0.0.1:{os.environ.get('OMS_CONSOLE_PORT', '8080')}"
    print(f"\n Staff console: {console_url}")
    if os.environ.get("OMS_CONSOLE_ADMIN_PASSWORD"):
        print("   sign in as `admin` with the password in OMS_CONSOLE_ADMIN_PASSWORD")
    else:
        print("   create an account first (asks for a password), then sign in with it:")
        print("   .venv/bin/oms-console create-user NAME --role admin|support|warehouse")
    print("\n Walk one order through: see README.md, 'A first order with curl'.")
    print(" Ctrl-C stops everything.")
    print("=" * width, flush=True)
    await asyncio.Event().wait()  # honcho stops every process when one exits


if __name__ == "__main__":
    asyncio.run(main())
