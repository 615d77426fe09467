from __future__ import annotations

from pydantic import Field

from oms_runtime.settings import ServiceSettings


class OrderSettings(ServiceSettings):
    port: int = Field(8000, validation_alias="OMS_ORDER_PORT")
