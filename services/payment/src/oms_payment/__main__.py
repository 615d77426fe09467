"""`python -m oms_payment [serve|migrate|relay]`."""

from oms_payment.db.tables import messaging
from oms_payment.settings import PaymentSettings
from oms_runtime.cli import ServiceDefinition, main

SERVICE = ServiceDefinition(name="payment", settings=PaymentSettings, tables=messaging)


def run() -> None:
    main(SERVICE)


if __name__ == "__main__":
    run()
