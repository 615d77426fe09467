"""Printed by `make run` once every service answers: where to point curl, and tokens."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx

from oms_runtime.auth import mint_token
from oms_runtime.settings import ServiceSettings

SERVICES = {"order": 8000, "inventory": 8001, "payment": 8002, "shipping": 8003}
# honcho prefixes every line a process prints, so the tokens go to a file the
# README has you `source` instead of lines to copy (elsewhere with OMS_RUN_ENV_FILE).
ENV_FILE = Path(os.environ.get("OMS_RUN_ENV_FILE", ".run/env"))


async def _wait_until_ready(client: httpx.AsyncClient, probes: list[str]) -> None:
    for probe in probes:
        while True:
            try:
                if (await client.get(probe)).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)


def _write_env_file(content: str) -> None:
    ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    ENV_FILE.touch(mode=0o600)  # tokens: readable by you alone, from the start
    ENV_FILE.write_text(content)


async def main() -> None:
    settings = ServiceSettings()
    ports = {
        name: int(os.environ.get(f"OMS_{name.upper()}_PORT", default))
        for name, default in SERVICES.items()
    }
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    gateway_url = os.environ.get("OMS_GATEWAY_URL", "http://127.0.0.1:8090")
    console_url = f"http://127.0.0.1:{os.environ.get('OMS_CONSOLE_PORT', '8080')}"
    # "Up" means everything the banner points at answers, the console and the
    # simulator included, not only the four services.
    probes = [f"{url}/readyz" for url in (*urls.values(), console_url)]
    async with httpx.AsyncClient(timeout=2.0) as client:
        await _wait_until_ready(client, [*probes, f"{gateway_url}/healthz"])
    lifetime = settings.jwt_max_lifetime_seconds
    issuer, audience = settings.jwt_issuer, settings.jwt_audience
    admin = mint_token(
        settings.jwt_secret, "ops", "admin", lifetime, issuer=issuer, audience=audience
    )
    customer = mint_token(
        settings.jwt_secret, "alice", "customer", lifetime, issuer=issuer, audience=audience
    )
    _write_env_file(f"export ADMIN={admin}\nexport TOKEN={customer}\n")
    width = 78
    print("=" * width)
    print(" OMS is up. API docs:")
    for name, url in urls.items():
        print(f"   {name:<10} {url}/docs")
    print(f"   gateway    {gateway_url}  (simulator)")
    print(
        f"\n Tokens (valid {lifetime // 3600} h) for an admin ($ADMIN) and the customer alice"
        " ($TOKEN),\n in another shell:"
    )
    print(f"   source {ENV_FILE}")
    print("   (mint more with `.venv/bin/oms-token --sub NAME [--role admin]`)")
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
