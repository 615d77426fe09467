"""Who may do what in the console. Checked on the server for every page and action;
the templates only hide what the role may not use."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    SUPPORT = "support"
    WAREHOUSE = "warehouse"
    ADMIN = "admin"


class Permission(StrEnum):
    VIEW_ORDERS = "view orders"
    CANCEL_ORDER = "cancel orders"
    REFUND = "refund payments"
    RETRY = "retry stuck orders"
    FORCE = "force compensations"
    REVIEW_RETURNS = "approve or reject returns"
    RECEIVE_RETURNS = "receive returns"
    VIEW_ATTENTION = "see the attention queue"
    VIEW_WAREHOUSE = "see the warehouse"
    DISPATCH = "dispatch parcels"
    VIEW_STOCK = "see stock and the ledger"
    RESTOCK = "restock"
    MANAGE_LOCATIONS = "add stock locations"
    VIEW_REPLENISHMENTS = "see replenishment requests"
    DEAD_LETTERS = "inspect, replay and discard dead letters"
    CAPACITY = "see capacity"
    LIVE_FEED = "watch the live event feed"
    AUDIT_LOG = "read the audit log"


_SUPPORT = frozenset(
    {
        Permission.VIEW_ORDERS,
        Permission.CANCEL_ORDER,
        Permission.REVIEW_RETURNS,
        Permission.VIEW_ATTENTION,
        Permission.LIVE_FEED,
    }
)
_WAREHOUSE = frozenset(
    {
        Permission.VIEW_WAREHOUSE,
        Permission.DISPATCH,
        Permission.RECEIVE_RETURNS,
        Permission.VIEW_STOCK,
        Permission.RESTOCK,
        Permission.VIEW_REPLENISHMENTS,
    }
)

GRANTS: dict[Role, frozenset[Permission]] = {
    Role.SUPPORT: _SUPPORT,
    Role.WAREHOUSE: _WAREHOUSE,
    Role.ADMIN: frozenset(Permission),
}


def may(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]
