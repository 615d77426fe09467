"""Simulated external card payment gateway.

Stands in for the real card gateway in development and tests, over real HTTP.
It deliberately shares no code with the rest of the OMS: it is the external
party, so the payment service must only know it through its HTTP API.
"""

from oms_gateway_simulator.app import create_app
from oms_gateway_simulator.config import GatewayConfig

__all__ = ["GatewayConfig", "create_app"]
__version__ = "0.2.0"
