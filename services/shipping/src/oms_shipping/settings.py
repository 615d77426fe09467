from __future__ import annotations

from pydantic import Field

from oms_runtime.settings import ServiceSettings

DEVELOPMENT_CARRIER_SECRET = "dev-only-carrier-secret-change-me"


class ShippingSettings(ServiceSettings):
    port: int = Field(8003, validation_alias="OMS_SHIPPING_PORT")
    # Dispatch as soon as the shipment exists (demos, load tests) instead of
    # waiting for warehouse staff to call POST /shipments/{id}/dispatch.
    auto_dispatch: bool = False
    carrier_secret: str = DEVELOPMENT_CARRIER_SECRET
    # Also accept the old body-only `X-Signature: sha256=<hex>` (weaker: no timestamp
    # and no id, so a captured delivery can be replayed) during a carrier's migration.
    carrier_accept_legacy_signature: bool = False
    carrier_name: str = "simpost"
    # ISO 3166 country codes we ship to, comma separated; empty: everywhere.
    shipping_countries: str = ""

    def secrets(self) -> dict[str, tuple[str, str]]:
        return {
            **super().secrets(),
            "OMS_CARRIER_SECRET": (self.carrier_secret, DEVELOPMENT_CARRIER_SECRET),
        }

    def serves(self, country: str) -> bool:
        served = {c.strip().upper() for c in self.shipping_countries.split(",") if c.strip()}
        return not served or country.upper() in served
