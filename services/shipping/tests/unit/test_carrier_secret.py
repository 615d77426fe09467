"""The carrier secret is one of the secrets shipping refuses to listen beyond
loopback with."""

from __future__ import annotations

import pytest

from oms_runtime.settings import WeakSecrets
from oms_shipping.settings import DEVELOPMENT_CARRIER_SECRET, ShippingSettings

STRONG = "x" * 32


def test_shipping_also_refuses_the_development_carrier_secret() -> None:
    settings = ShippingSettings(jwt_secret=STRONG, carrier_secret=DEVELOPMENT_CARRIER_SECRET)
    with pytest.raises(WeakSecrets) as refused:
        settings.refuse_weak_secrets("0.0.0.0")
    assert "OMS_CARRIER_SECRET" in str(refused.value)
    assert "OMS_JWT_SECRET" not in str(refused.value)
    ShippingSettings(jwt_secret=STRONG, carrier_secret=STRONG).refuse_weak_secrets("::")
