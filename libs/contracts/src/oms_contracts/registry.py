"""The catalog: every message type by its routing key."""

from __future__ import annotations

from oms_contracts import inventory, order, payment, shipping
from oms_contracts.envelope import Message

_MODULES = (order, inventory, payment, shipping)


def _collect() -> dict[str, type[Message]]:
    catalog: dict[str, type[Message]] = {}
    for module in _MODULES:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Message)
                and "routing_key" in vars(value)
            ):
                if value.routing_key in catalog:
                    raise RuntimeError(f"duplicate routing key {value.routing_key}")
                catalog[value.routing_key] = value
    return catalog


CATALOG: dict[str, type[Message]] = _collect()


def message_class(routing_key: str) -> type[Message]:
    return CATALOG[routing_key]
