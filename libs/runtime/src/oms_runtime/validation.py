"""Input types shared by the services' HTTP schemas."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import Header
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field


def _whole_number(value: Any) -> Any:
    # JSON Schema's "integer" admits 2.0 but not "2" or true; pydantic's lax mode
    # would take "2" and true, its strict mode would refuse 2.0. Match the schema.
    if isinstance(value, bool | str | bytes):
        raise ValueError("must be a whole number")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Integers as JSON Schema means them. Use after the bounds, so that the documents
# carry standard `minimum`/`exclusiveMinimum`/`maximum` (after a validator pydantic
# would write its own `gt`/`le`): `Annotated[int, Field(gt=0, le=100), WHOLE_NUMBER]`.
WHOLE_NUMBER = BeforeValidator(_whole_number)


def _looks_numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _iso_only(value: Any) -> Any:
    # pydantic would read "0.5" as a Unix timestamp; the schema promises RFC 3339.
    if isinstance(value, int | float) or (isinstance(value, str) and _looks_numeric(value)):
        raise ValueError("must be an RFC 3339 date (or date-time with a time zone)")
    return value


IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_only)]
IsoDate = Annotated[date, BeforeValidator(_iso_only)]
# Row ids used as cursors: bigint in Postgres.
CursorId = Annotated[int, Field(ge=0, le=2**63 - 1)]


# Idempotency keys end up in the gateway's headers, in our keys and in logs:
# visible ASCII only (no spaces, no control or non-ASCII characters).
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]+$")
IDEMPOTENCY_KEY_MAX_LENGTH = 255


def _visible_ascii(value: str | None) -> str | None:
    if value is not None and not _IDEMPOTENCY_KEY.match(value):
        raise ValueError("must be visible ASCII characters only (no spaces or accents)")
    return value


def idempotency_key_header(description: str) -> Any:
    """The `Idempotency-Key` header parameter, validated at the edge (a bad key is a
    422 naming the header) so it can travel anywhere afterwards."""
    return Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        description=f"{description}. 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} visible ASCII characters",
        json_schema_extra={"pattern": _IDEMPOTENCY_KEY.pattern},
    )


# Use as `Annotated[IdempotencyKey, idempotency_key_header("...")] = None`.
IdempotencyKey = Annotated[str | None, AfterValidator(_visible_ascii)]
