"""Input types shared by the services' HTTP schemas."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

import pycountry
from fastapi import Header
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)


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


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be blank")
    return value


# A required text (a name, a street) made of spaces only is as good as missing.
NOT_BLANK = AfterValidator(_not_blank)


def _known_country(code: str) -> str:
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{code} is not an ISO 3166-1 alpha-2 country code")
    return code


CountryCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2",
        examples=["DE"],
        # Listed: the pattern alone would promise every two capitals.
        json_schema_extra={"enum": sorted(country.alpha_2 for country in pycountry.countries)},
    ),
    AfterValidator(_known_country),
]


class StrictInput(BaseModel):
    """A request body: unknown fields refused, and no string may carry a NUL
    character (Postgres cannot store one; refused here, the field is named)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value
