"""`python -m oms_order [serve|migrate|relay]`."""

from oms_order.db.tables import messaging
from oms_order.settings import OrderSettings
from oms_runtime.cli import ServiceDefinition, main

SERVICE = ServiceDefinition(name="order", settings=OrderSettings, tables=messaging)


def run() -> None:
    main(SERVICE)


if __name__ == "__main__":
    run()
