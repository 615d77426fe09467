from __future__ import annotations

from pydantic import Field

from oms_runtime.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    port: int = Field(8001, validation_alias="OMS_INVENTORY_PORT")
    # A reservation not shipped within this time is released and the saga told;
    # longer than the order service's dispatch deadline, so it is a safety net.
    reservation_ttl_seconds: float = 7 * 24 * 3600
    # How often expired reservations and low-stock flags are checked.
    inventory_check_seconds: float = 30
