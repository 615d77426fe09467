"""Templates, their filters, and what every page gets (staff, navigation, flash)."""

from __future__ import annotations

import uuid
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from oms_console.domain.money import format_money
from oms_console.domain.roles import Permission

TEMPLATES_DIR = Path(str(files("oms_console.web") / "templates"))
STATIC_DIR = Path(str(files("oms_console.web") / "static"))

# (path, label, permission): the navigation, in this order, for those allowed.
NAVIGATION = (
    ("/orders", "Orders", Permission.VIEW_ORDERS),
    ("/attention", "Attention", Permission.VIEW_ATTENTION),
    ("/warehouse", "Warehouse", Permission.VIEW_WAREHOUSE),
    ("/stock", "Stock", Permission.VIEW_STOCK),
    ("/locations", "Locations", Permission.VIEW_STOCK),
    ("/replenishments", "Replenishment", Permission.VIEW_REPLENISHMENTS),
    ("/dead-letters", "Dead letters", Permission.DEAD_LETTERS),
    ("/capacity", "Capacity", Permission.CAPACITY),
    ("/feed", "Live feed", Permission.LIVE_FEED),
    ("/audit", "Audit log", Permission.AUDIT_LOG),
)


def _when(value: object) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "-" if value is None else str(value)


def _status(value: object) -> Markup:
    text = str(value or "-")
    return Markup('<span class="status status-{0}">{1}</span>').format(
        text.replace("_", "-"), text.replace("_", " ")
    )


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["money"] = lambda minor, currency: format_money(minor, currency)
templates.env.filters["when"] = _when
templates.env.filters["status"] = _status
templates.env.globals["new_key"] = lambda: str(uuid.uuid4())


async def page(
    request: Request, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    staff = getattr(request.state, "staff", None)
    flash = None
    if staff is not None and staff.session.flash:
        flash = staff.session.flash  # shown once
        await request.app.state.accounts.store.clear_flash(staff.session.token_hash)
    navigation = [
        (path, label) for path, label, permission in NAVIGATION if staff and staff.may(permission)
    ]
    return templates.TemplateResponse(
        request,
        template,
        {
            "staff": staff,
            "navigation": navigation,
            "flash": flash,
            "current": request.url.path,
            **context,
        },
        status_code=status_code,
    )
