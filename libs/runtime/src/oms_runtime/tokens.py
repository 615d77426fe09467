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
    parser.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    args = parser.parse_args(argv)
    print(mint_token(ServiceSettings().jwt_secret, args.sub, args.role, args.ttl))


if __name__ == "__main__":
    main()
