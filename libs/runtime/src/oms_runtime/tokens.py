"""`oms-token`: mint a development JWT.

oms-token --sub alice                 # a customer token for alice
oms-token --sub ops --role admin      # an admin token
"""

from __future__ import annotations

import argparse

from oms_runtime.auth import ROLES, mint_token
from oms_runtime.settings import ServiceSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="oms-token", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sub", required=True, help="subject: the customer id or user name")
    parser.add_argument("--role", choices=ROLES, default="customer")
    settings = ServiceSettings()
    parser.add_argument(
        "--ttl",
        type=int,
        default=settings.jwt_max_lifetime_seconds,
        help="lifetime in seconds (at most OMS_JWT_MAX_LIFETIME_SECONDS, the default)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.ttl <= settings.jwt_max_lifetime_seconds:
        parser.error(
            f"--ttl must be 1..{settings.jwt_max_lifetime_seconds} "
            "(OMS_JWT_MAX_LIFETIME_SECONDS): the services refuse longer-lived tokens"
        )
    print(
        mint_token(
            settings.jwt_secret,
            args.sub,
            args.role,
            args.ttl,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
    )


if __name__ == "__main__":
    main()
