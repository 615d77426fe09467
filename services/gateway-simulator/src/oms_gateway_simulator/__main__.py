"""`python -m oms_gateway_simulator`: serve the simulator with uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence

import uvicorn

from oms_gateway_simulator.app import create_app
from oms_gateway_simulator.config import admin_key_from_env

MIN_ADMIN_KEY_LENGTH = 16


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def refusal(host: str, admin_key: str | None) -> str | None:
    """Why the simulator must not start listening on `host`, if it must not: its
    test/ops endpoints reset the ledger and inject faults, so beyond this machine
    they need a key nobody can guess."""
    if is_loopback(host):
        return None
    if admin_key is None:
        return (
            f"refusing to listen on {host} without OMS_GATEWAY_ADMIN_KEY: /v1/_config "
            "and /v1/_reset would be open to anyone who can reach it"
        )
    if len(admin_key) < MIN_ADMIN_KEY_LENGTH:
        return (
            f"OMS_GATEWAY_ADMIN_KEY is shorter than {MIN_ADMIN_KEY_LENGTH} characters"
        )
    return None


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
    refused = refusal(args.host, admin_key_from_env())
    if refused is not None:
        sys.exit(f"oms-gateway-simulator: {refused}")
    # HTTPS with the same settings as the services.
    cert_file = os.environ.get("OMS_TLS_CERT_FILE") or None
    key_file = os.environ.get("OMS_TLS_KEY_FILE") or None
    if (cert_file is None) != (key_file is None):
        sys.exit(
            "oms-gateway-simulator: set both OMS_TLS_CERT_FILE and OMS_TLS_KEY_FILE"
        )
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ssl_certfile=cert_file,
        ssl_keyfile=key_file,
        # Clients' idle keep-alive connections must not hold a stop up for ever.
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
