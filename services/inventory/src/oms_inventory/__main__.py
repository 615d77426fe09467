"""`python -m oms_inventory [serve|migrate|relay]`."""

from oms_inventory.db.tables import messaging
from oms_inventory.settings import InventorySettings
from oms_runtime.cli import ServiceDefinition, main

SERVICE = ServiceDefinition(name="inventory", settings=InventorySettings, tables=messaging)


def run() -> None:
    main(SERVICE)


if __name__ == "__main__":
    run()
