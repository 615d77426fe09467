"""Every message that crosses a service boundary, and nothing else.

Routing keys are `<owning service>.<name>`. Events go to the `oms.events` topic
exchange (any system may subscribe); commands go to `oms.commands` and are meant
for exactly one service.
"""

from oms_contracts.envelope import (
    COMMANDS_EXCHANGE,
    EVENTS_EXCHANGE,
    Command,
    Envelope,
    Event,
    Message,
)
from oms_contracts.registry import CATALOG, message_class

__all__ = [
    "CATALOG",
    "COMMANDS_EXCHANGE",
    "EVENTS_EXCHANGE",
    "Command",
    "Envelope",
    "Event",
    "Message",
    "message_class",
]
