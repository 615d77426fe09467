"""The capacity report of the running system, as one table.

    python -m oms_devtools.capacity [--url order=http://127.0.0.1:8000 ...]
                                    [--token JWT] [--target 0.7] [--window 60] [--json]

Asks every service for `GET /admin/capacity` (their own measurements over the last
minute, and their queue as the broker sees it) and prints one row per queue. With
no `--token`, an admin token is minted with `OMS_JWT_SECRET` (or `.env`), as `make
run`'s services use it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from oms_runtime.auth import mint_token
from oms_runtime.settings import ServiceSettings

DEFAULT_URLS = {
    "order": "http://127.0.0.1:8000",
    "inventory": "http://127.0.0.1:8001",
    "payment": "http://127.0.0.1:8002",
    "shipping": "http://127.0.0.1:8003",
}

Report = dict[str, Any]


async def fetch_capacity(
    urls: Mapping[str, str],
    token: str,
    target_utilisation: float = 0.7,
    window_seconds: float | None = None,
    timeout: float = 5.0,
) -> dict[str, Report]:
    """Each service's report by name; a service that did not answer gets `{"error"}`."""
    params: dict[str, float] = {"target_utilisation": target_utilisation}
    if window_seconds is not None:
        params["window_seconds"] = window_seconds
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=timeout) as client:

        async def one(url: str) -> Report:
            try:
                response = await client.get(
                    f"{url.rstrip('/')}/admin/capacity", params=params, headers=headers
                )
            except httpx.HTTPError as exc:
                return {"error": f"{type(exc).__name__}: {exc}"}
            if response.status_code != 200:
                return {"error": f"HTTP {response.status_code}: {response.text[:200]}"}
            return dict(response.json())

        results = await asyncio.gather(*(one(url) for url in urls.values()))
    return dict(zip(urls, results, strict=True))


COLUMNS = (
    ("service", "service"),
    ("queue", "queue"),
    ("c", "consumers"),
    ("msgs", "messages"),
    ("lambda/s", "arrival_rate"),
    ("S ms", "mean_service_time"),
    ("handle ms", "mean_handling_time"),
    ("rho", "utilisation"),
    ("Lq 1", "predicted_queue_length_mm1"),
    ("Lq c", "predicted_queue_length"),
    ("Wq ms", "predicted_wait_seconds"),
    ("P(wait)", "probability_of_waiting"),
    ("depth", "observed_depth"),
    ("in hand", "in_flight"),
    ("replicas", "replicas_needed"),
)
MILLISECONDS = {"mean_service_time", "mean_handling_time", "predicted_wait_seconds"}
# A missing prediction means an unstable queue (unbounded); a missing observation
# means the broker could not be asked.
UNBOUNDED = {"predicted_queue_length_mm1", "predicted_queue_length", "predicted_wait_seconds"}


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "inf" if key in UNBOUNDED else "?"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if key in MILLISECONDS:
        return f"{value * 1000:.2f}"
    if isinstance(value, int):
        return str(value)
    return f"{value:.2f}" if abs(value) < 1000 else f"{value:.0f}"


def report_rows(reports: Mapping[str, Report]) -> list[dict[str, Any]]:
    """Flattened rows (`service` added), one per queue of the services that answered."""
    return [
        {"service": service, **queue}
        for service, report in reports.items()
        if "error" not in report
        for queue in report.get("queues", [])
    ]


def format_table(reports: Mapping[str, Report], target_utilisation: float | None = None) -> str:
    rows = report_rows(reports)
    target = target_utilisation or next(
        (row["target_utilisation"] for row in rows if "target_utilisation" in row), 0.7
    )
    window = max((row.get("window_seconds", 0.0) for row in rows), default=0.0)
    header = [title if key != "replicas_needed" else f"c@{target:g}" for title, key in COLUMNS]
    body = [[_cell(key, row.get(key)) for _, key in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(COLUMNS))]
    lines = [
        f"Capacity over the last {window:.0f} s (S = busy time per message; rho = lambda*S/c; "
        f"Lq 1 = one consumer, Lq c = M/M/c; depth = ready in the broker; c@{target:g} = "
        f"consumers needed for rho <= {target:g})",
        "  ".join(cell.rjust(width) for cell, width in zip(header, widths, strict=True)),
    ]
    lines += [
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in body
    ]
    lines += [
        f"{service}: no report ({report['error']})"
        for service, report in reports.items()
        if "error" in report
    ]
    return "\n".join(lines)


def _parse_urls(values: Sequence[str]) -> dict[str, str]:
    urls = dict(DEFAULT_URLS)
    if values:
        urls = {}
        for value in values:
            name, sep, url = value.partition("=")
            if not sep or not name or not url:
                raise argparse.ArgumentTypeError(f"--url wants name=http://host:port, got {value}")
            urls[name] = url
    return urls


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m oms_devtools.capacity", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--url",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="a service to ask (repeat); default: the four services on ports 8000-8003",
    )
    parser.add_argument("--token", help="admin bearer token (default: minted)")
    parser.add_argument("--target", type=float, default=0.7, help="target utilisation")
    parser.add_argument("--window", type=float, help="seconds to average over (max 60)")
    parser.add_argument("--json", action="store_true", help="print the raw reports")
    args = parser.parse_args(argv)
    if not 0 < args.target <= 1:
        parser.error("--target must be in (0, 1]")
    try:
        urls = _parse_urls(args.url)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    token = args.token or mint_token(ServiceSettings().jwt_secret, "capacity-cli", "admin")
    reports = asyncio.run(fetch_capacity(urls, token, args.target, args.window))
    print(json.dumps(reports, indent=2) if args.json else format_table(reports, args.target))
    return 1 if any("error" in report for report in reports.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
