"""Keyset ("cursor") pagination: stable while rows are added, no OFFSET scans."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Select
from sqlalchemy.ext.asyncio import AsyncConnection


async def keyset_page(
    connection: AsyncConnection,
    query: Select[Any],
    key: Column[Any],
    *,
    after: Any | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """Rows of `query` ordered by the unique `key`, starting after the cursor `after`.

    Returns the page and the cursor of the next one (None on the last page).
    """
    if after is not None:
        query = query.where(key > after)
    result = await connection.execute(query.order_by(key).limit(limit + 1))
    rows = [dict(row) for row in result.mappings()]
    page = rows[:limit]
    next_cursor = str(page[-1][key.name]) if len(rows) > limit else None
    return page, next_cursor
