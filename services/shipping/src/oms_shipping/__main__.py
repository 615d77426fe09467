"""`python -m oms_shipping [serve|migrate|relay]`."""

from oms_runtime.cli import ServiceDefinition, main
from oms_shipping.db.tables import messaging
from oms_shipping.settings import ShippingSettings

SERVICE = ServiceDefinition(name="shipping", settings=ShippingSettings, tables=messaging)


def run() -> None:
    main(SERVICE)


if __name__ == "__main__":
    run()
