"""`python -m oms_gateway_simulator`: serve the simulator with uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

import uvicorn

from oms_gateway_simulator.app import create_app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="oms-gateway-simulator",
        description="Simulated external card payment gateway.",
    )
    # argparse applies `type` to string defaults too, so a bad env value is
    # reported like a bad CLI argument.
    parser.add_argument(
        "--host", default=os.environ.get("OMS_GATEWAY_HOST", "127.0.0.1")
    )
    parser.add_argument(
        "--port", type=int, default=os.environ.get("OMS_GATEWAY_PORT", "8090")
    )
    # Follows the services' level when run next to them (the benchmark runs at
    # WARNING, where a log line per request would cost more than serving it).
    parser.add_argument(
        "--log-level", default=os.environ.get("OMS_LOG_LEVEL", "info").lower()
    )
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
