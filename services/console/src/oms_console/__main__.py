"""`oms-console serve|migrate|create-user` (also `python -m oms_console ...`)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from importlib.resources import files
from pathlib import Path

import uvicorn

from oms_console.accounts import Accounts, InvalidAccount
from oms_console.db.store import ConsoleStore, StaffExists
from oms_console.domain.roles import Role
from oms_console.settings import ConsoleSettings
from oms_runtime.cli import tune_garbage_collection
from oms_runtime.db import create_engine
from oms_runtime.logging import configure_logging
from oms_runtime.migrations import upgrade_to_head
from oms_runtime.settings import WeakSecrets

MIGRATIONS = Path(str(files("oms_console") / "db" / "migrations"))


def read_password(prompt_for: str) -> str:
    """From the terminal (asked twice), or the first line of stdin when piped."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"Password for {prompt_for}: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("The passwords differ; nothing was changed.")
    return first


async def create_user(settings: ConsoleSettings, name: str, role: Role, password: str) -> int:
    engine = create_engine(settings, "console-cli")
    try:
        member = await Accounts(ConsoleStore(engine), settings).create_user(name, role, password)
    except InvalidAccount as exc:
        print(f"{exc.field}: {exc}", file=sys.stderr)
        return 2
    except StaffExists:
        print(f"an account named {name.strip().lower()} exists already", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(f"created {member.name} ({member.role.value})")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="oms-console", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="the web console (default)")
    serve.add_argument("--port", type=int)
    serve.add_argument("--host")
    sub.add_parser("migrate", help="create the database/schema and apply migrations")
    create = sub.add_parser(
        "create-user", help="add a staff account (password from the terminal or stdin)"
    )
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    args = parser.parse_args(argv)

    settings = ConsoleSettings()
    configure_logging("console", settings.log_level, settings.log_format)
    tune_garbage_collection(settings.gc_young_threshold)
    if args.command == "migrate":
        upgrade_to_head(MIGRATIONS, settings.database_url)
    elif args.command == "create-user":
        password = read_password(args.name)
        sys.exit(asyncio.run(create_user(settings, args.name, Role(args.role), password)))
    else:
        host = getattr(args, "host", None) or settings.host
        try:
            # The console mints admin tokens with OMS_JWT_SECRET: a public or short
            # one would let anyone act as staff.
            settings.refuse_weak_secrets(host)
        except WeakSecrets as exc:
            sys.exit(f"oms-console: {exc}")
        uvicorn.run(
            "oms_console.main:create_app",
            factory=True,
            host=host,
            port=getattr(args, "port", None) or settings.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            # Open live-feed streams must not hold a stop up for long.
            timeout_graceful_shutdown=5,
        )


def run() -> None:
    main()


if __name__ == "__main__":
    run()
