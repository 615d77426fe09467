"""A bench run: a throwaway stack, the phases, the checks, the results file; and
the command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import secrets
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg

import oms_devtools.bench
from oms_devtools import infra
from oms_devtools.bench.check import check_correctness
from oms_devtools.bench.cpu import GATEWAY_DATABASE_SUFFIX, CpuMeter, cpu_split
from oms_devtools.bench.load import EventListener, LoadGenerator, Placed, parse_mix
from oms_devtools.bench.report import PhaseRun, format_phase, summarise
from oms_devtools.capacity import fetch_capacity, format_table
from oms_devtools.client import OmsClient
from oms_devtools.stack import GATEWAY, SERVICES, Stack
from oms_runtime.auth import mint_token
from oms_runtime.db import libpq_url

OK_SKUS = 20
STOCK_PER_SKU = 1_000_000


async def wait_all_settled(
    listener: EventListener, placed: Sequence[Placed], timeout: float
) -> float:
    deadline = time.perf_counter() + timeout
    pending = [p.order_id for p in placed if p.order_id is not None]
    while pending and time.perf_counter() < deadline:
        pending = [order_id for order_id in pending if not listener.is_settled(order_id)]
        if pending:
            await asyncio.sleep(0.1)
    return time.perf_counter()


async def wait_until_quiet(database_url: str, timeout: float) -> None:
    """Until the work an order does after its final event (capturing the money,
    committing the stock, publishing) is done too, so a phase does not start behind
    the previous one's backlog."""
    connection = await asyncpg.connect(libpq_url(database_url))
    deadline = time.perf_counter() + timeout
    try:
        while time.perf_counter() < deadline:
            busy = await connection.fetchval(
                "SELECT (SELECT count(*) FROM payment.payments"
                " WHERE status IN ('authorized', 'partially_captured'))"
                " + (SELECT count(*) FROM inventory.reservations WHERE status = 'reserved')"
                " + (SELECT count(*) FROM orders.outbox) + (SELECT count(*) FROM inventory.outbox)"
                " + (SELECT count(*) FROM payment.outbox) + (SELECT count(*) FROM shipping.outbox)"
            )
            if busy == 0:
                return
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


async def parcels_per_order(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(libpq_url(database_url))
    try:
        rows = await connection.fetch(
            "SELECT jsonb_array_length(fulfillments) AS parcels, count(*) AS orders "
            "FROM orders.orders GROUP BY 1 ORDER BY 1"
        )
    finally:
        await connection.close()
    return {str(row["parcels"]): int(row["orders"]) for row in rows}


@dataclass
class Environment:
    run_id: str
    database_url: str
    vhost: str
    amqp_url: str
    stack: Stack
    jwt_secret: str
    carrier_secret: str


async def run_phase(
    name: str,
    description: str,
    duration: float,
    offered_rate: float | None,
    load: Any,
    env: Environment,
    meter: CpuMeter,
    listener: EventListener,
    oms: OmsClient,
    settle_timeout: float,
) -> PhaseRun:
    print(f"-- {name}: {description} ...", flush=True)
    cpu_before = meter.sample()
    started = time.perf_counter()
    load_task = asyncio.create_task(load)
    # The consumers' view of the load, taken just before it stops.
    await asyncio.sleep(max(0.0, duration - 0.5))
    capacity = await fetch_capacity(
        {service: oms.urls[service] for service in SERVICES},
        oms.admin_token,
        window_seconds=min(60.0, max(1.0, duration - 0.5)),
    )
    placed = await load_task
    load_ended = time.perf_counter()
    settled_at = await wait_all_settled(listener, placed, settle_timeout)
    cpu_after = meter.sample()
    return PhaseRun(
        name=name,
        description=description,
        duration=duration,
        offered_rate=offered_rate,
        started=started,
        load_ended=load_ended,
        settled_at=settled_at,
        placed=placed,
        cpu=cpu_split(cpu_before, cpu_after, settled_at - started),
        capacity=capacity,
    )


async def migrate_in_parallel(database_url: str) -> None:
    """`infra.migrate_all`, all services at once: each owns its schema, and the
    bench's start-up time counts in the smoke test's budget."""

    async def migrate(service: str) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"oms_{service}",
            "migrate",
            env={**os.environ, "OMS_DATABASE_URL": database_url},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"migrating {service} failed:\n{output.decode(errors='replace')}")

    await asyncio.gather(*(migrate(service) for service in SERVICES))


async def run(args: argparse.Namespace, env: Environment, out: Path) -> int:
    started_at = datetime.now(UTC)
    print(f"bench {env.run_id}: database {env.database_url}, vhost {env.vhost}", flush=True)
    await infra.recreate_database(env.database_url)
    if args.gateway_ledger == "postgres":
        await infra.recreate_database(env.database_url + GATEWAY_DATABASE_SUFFIX)
    await migrate_in_parallel(env.database_url)
    env.stack.start_all()
    await env.stack.wait_ready()

    oms = OmsClient(
        {name: env.stack.url(name) for name in (*SERVICES, GATEWAY)},
        jwt_secret=env.jwt_secret,
        carrier_secret=env.carrier_secret,
    )
    listener = EventListener(env.amqp_url)
    await listener.start()
    rng = random.Random(args.seed)
    initial_stock: dict[str, int] = {}
    ok_skus = []
    # With --locations N, each SKU is stocked at one of N locations (round robin), so
    # an order of several SKUs ships in a parcel per location it touches.
    locations = ["default"] + [
        (await oms.create_location(code=f"BENCH-L{index}"))["code"]
        for index in range(1, args.locations)
    ]
    for index in range(OK_SKUS):
        product = await oms.create_product(
            stock={locations[index % len(locations)]: STOCK_PER_SKU},
            unit_price=rng.randrange(100, 10_000),
            sku=f"BENCH-{index:02d}",
        )
        ok_skus.append(product["sku"])
        initial_stock[product["sku"]] = STOCK_PER_SKU
    empty = await oms.create_product(on_hand=0, unit_price=999, sku="BENCH-EMPTY")
    initial_stock[empty["sku"]] = 0

    tokens = [mint_token(env.jwt_secret, f"bench-{i}", "customer", 24 * 3600) for i in range(16)]
    load = LoadGenerator(
        oms.urls["order"],
        tokens,
        ok_skus,
        empty["sku"],
        args.mix,
        listener,
        seed=args.seed,
        max_connections=max(256, args.workers * 2),
        request_timeout=args.request_timeout,
    )
    meter = CpuMeter(env.stack, env.database_url.rsplit("/", 1)[-1])
    meter.start()
    phases: list[PhaseRun] = []
    try:
        if args.duration > 0:
            arrivals = "Poisson" if args.arrivals == "poisson" else "evenly spaced"
            phases.append(
                await run_phase(
                    "open loop",
                    f"{args.rate:g} orders/s offered for {args.duration:g} s ({arrivals} arrivals)",
                    args.duration,
                    args.rate,
                    load.open_loop(args.rate, args.duration, args.arrivals == "poisson"),
                    env,
                    meter,
                    listener,
                    oms,
                    args.settle_timeout,
                )
            )
        if args.max_rate_duration > 0:
            if phases:
                await wait_until_quiet(env.database_url, args.settle_timeout)
            phases.append(
                await run_phase(
                    "max rate",
                    f"{args.workers} closed-loop clients for {args.max_rate_duration:g} s "
                    "(each waits for its order's final outcome)",
                    args.max_rate_duration,
                    None,
                    load.closed_loop(args.workers, args.max_rate_duration, args.settle_timeout),
                    env,
                    meter,
                    listener,
                    oms,
                    args.settle_timeout,
                )
            )
        all_placed = [p for phase in phases for p in phase.placed]
        checks = await check_correctness(
            env.database_url, oms, all_placed, listener, initial_stock, args.check_timeout
        )
        parcels = await parcels_per_order(env.database_url)
    finally:
        await meter.stop()
        await load.aclose()
        await listener.close()
        await oms.aclose()

    summaries = [summarise(phase, listener) for phase in phases]
    passed = all(check.passed for check in checks)
    print()
    for summary in summaries:
        print(format_phase(summary))
        print()
    print("== correctness")
    for check in checks:
        print(f"   [{'ok' if check.passed else 'FAIL'}] {check.name}: {check.detail}")
    print(f"   {'PASS' if passed else 'FAIL'}")
    print(f"   parcels per order (parcels: orders): {parcels}")
    for summary in summaries:
        print()
        print(f"== capacity at the end of the {summary['name']} phase")
        print(format_table(summary["capacity"]))

    result = {
        "run_id": env.run_id,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "config": {
            "rate": args.rate,
            "duration": args.duration,
            "max_rate_duration": args.max_rate_duration,
            "workers": args.workers,
            "mix": args.mix,
            "locations": args.locations,
            "arrivals": args.arrivals,
            "seed": args.seed,
            "gateway_ledger": args.gateway_ledger,
            "service_logs": args.service_logs,
            "service_env": {
                key: value for key, value in env.stack.env.items() if "SECRET" not in key
            },
        },
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "phases": summaries,
        # How many orders shipped in how many parcels (one per stock location).
        "parcels_per_order": parcels,
        "correctness": {"passed": passed, "checks": [check.as_dict() for check in checks]},
        "verdict": "PASS" if passed else "FAIL",
        "logs": str(env.stack.log_dir),
    }
    await asyncio.to_thread(_write_json, out, result)
    print(f"\nresults: {out}\nservice logs: {env.stack.log_dir}")
    return 0 if passed else 1


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m oms_devtools.bench",
        description=(oms_devtools.bench.__doc__ or "").split("\n\n")[0],
    )
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop orders/s")
    parser.add_argument("--duration", type=float, default=30.0, help="open-loop seconds (0: skip)")
    parser.add_argument(
        "--max-rate-duration", type=float, default=30.0, help="max-rate seconds (0: skip)"
    )
    parser.add_argument("--workers", type=int, default=64, help="max-rate concurrent clients")
    parser.add_argument(
        "--mix",
        type=parse_mix,
        default=parse_mix("ok=90,declined=5,out_of_stock=5"),
        help="share of each kind of order (default ok=90,declined=5,out_of_stock=5)",
    )
    parser.add_argument(
        "--locations",
        type=int,
        default=1,
        help="stock locations the SKUs are spread over (1: every order ships in one parcel; "
        "more: orders of several SKUs ship in a parcel per location)",
    )
    parser.add_argument("--arrivals", choices=("poisson", "uniform"), default="poisson")
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument("--base-port", type=int, default=19000, help="first service port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--settle-timeout", type=float, default=120.0, help="max wait for orders to settle"
    )
    parser.add_argument(
        "--check-timeout", type=float, default=30.0, help="max wait for stock and money to settle"
    )
    parser.add_argument("--request-timeout", type=float, default=10.0)
    parser.add_argument(
        "--keep-database", action="store_true", help="leave the run's database for a look"
    )
    parser.add_argument(
        "--gateway-ledger",
        choices=("memory", "postgres"),
        default="memory",
        help="where the gateway simulator (harness) keeps its ledger: in memory (default: "
        "the bench never restarts it) or in a Postgres database of its own, as `make run` does",
    )
    parser.add_argument(
        "--service-logs",
        choices=("quiet", "make-run"),
        default="quiet",
        help="quiet: the services log warnings only, no access log (OMS_BENCH_LOG_LEVEL "
        "overrides the level); make-run: INFO, as text, with the access log, as `make run` "
        "starts them",
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.workers < 1:
        parser.error("--rate must be positive and --workers at least 1")
    if not 1 <= args.locations <= OK_SKUS:
        parser.error(f"--locations must be 1..{OK_SKUS}")
    if args.out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        args.out = Path("bench-results") / f"bench-{stamp}.json"
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    vhost, database_url, amqp_url = infra.throwaway_urls("oms_bench")
    run_id = vhost.removeprefix("oms_bench_")
    out: Path = args.out
    jwt_secret = secrets.token_urlsafe(32)
    carrier_secret = secrets.token_urlsafe(16)
    # The simulator's ledger in a database of its own: its Postgres backends are the
    # harness's CPU, not the system's (see CpuMeter).
    gateway_database_url = f"{database_url}{GATEWAY_DATABASE_SUFFIX}"
    logging_env = (
        {"OMS_LOG_LEVEL": "INFO", "OMS_LOG_FORMAT": "text", "OMS_ACCESS_LOG": "true"}
        if args.service_logs == "make-run"
        else {
            "OMS_LOG_LEVEL": os.environ.get("OMS_BENCH_LOG_LEVEL", "WARNING"),
            "OMS_ACCESS_LOG": "false",
        }
    )
    stack = Stack(
        database_url=database_url,
        amqp_url=amqp_url,
        log_dir=out.with_name(out.stem + "-logs"),
        base_port=args.base_port,
        gateway_port=args.base_port + 90,
        env={
            "OMS_JWT_SECRET": jwt_secret,
            "OMS_CARRIER_SECRET": carrier_secret,
            "OMS_AUTO_DISPATCH": "true",
            **logging_env,
            # Empty: the simulator keeps its ledger in memory.
            "OMS_GATEWAY_DATABASE_URL": (
                gateway_database_url if args.gateway_ledger == "postgres" else ""
            ),
        },
    )
    env = Environment(run_id, database_url, vhost, amqp_url, stack, jwt_secret, carrier_secret)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        infra.create_vhost(vhost)
        return _run_loop(run(args, env, out))
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        _stop_in_parallel(env.stack)
        if args.keep_database:
            print(f"database kept: {env.database_url}", file=sys.stderr)
        else:
            with contextlib.suppress(Exception):
                asyncio.run(infra.drop_database(env.database_url))
        if args.gateway_ledger == "postgres":
            with contextlib.suppress(Exception):
                asyncio.run(infra.drop_database(gateway_database_url))
        with contextlib.suppress(Exception):
            infra.delete_vhost(vhost)


def _run_loop(coroutine: Any) -> int:
    try:
        import uvloop
    except ImportError:  # the load generator then just costs more CPU
        return int(asyncio.run(coroutine))
    return int(uvloop.run(coroutine))


def _stop_in_parallel(stack: Stack) -> None:
    """Graceful stops, all at once: one after the other can take a while."""
    names = list(stack.processes)
    if names:
        with ThreadPoolExecutor(len(names)) as pool:
            list(pool.map(stack.stop, names))
