from __future__ import annotations

from pydantic import Field

from oms_runtime.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    port: int = Field(8001, validation_alias="OMS_INVENTORY_PORT")
