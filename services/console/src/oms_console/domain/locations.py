"""Stock locations as staff type them in the console's form. Inventory has the last
word (it checks countries against ISO 3166); this catches what is plainly wrong,
with a message naming the field, before anything is sent."""

from __future__ import annotations

import re
from typing import Any

CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


class LocationFormError(ValueError):
    pass


def new_location(code: str, name: str, country: str, priority: str, serves: str) -> dict[str, Any]:
    """The body of `POST /locations`. `serves` is a list of countries separated by
    commas or spaces; empty means everywhere."""
    code, name, country, priority = code.strip(), name.strip(), country.strip(), priority.strip()
    if not CODE_PATTERN.fullmatch(code):
        raise LocationFormError(
            "Code: letters, digits, '.', '_' or '-', starting with a letter or digit, up to 64."
        )
    if not name:
        raise LocationFormError("Name: give the location a name.")
    if not _COUNTRY.fullmatch(country):
        raise LocationFormError("Country: a two-letter ISO code, like DE.")
    body: dict[str, Any] = {"code": code, "name": name, "country": country.upper()}
    if priority:
        if not priority.isdigit() or int(priority) > 1_000_000:
            raise LocationFormError("Priority: a whole number from 0 to 1,000,000 (lower first).")
        body["priority"] = int(priority)
    countries = [c for c in re.split(r"[\s,;]+", serves.strip()) if c]
    if countries:
        wrong = [c for c in countries if not _COUNTRY.fullmatch(c)]
        if wrong:
            raise LocationFormError(
                f"Ships to: {', '.join(wrong)} is not a two-letter ISO code "
                "(list them like DE, AT, CH)."
            )
        body["serves"] = sorted({c.upper() for c in countries})
    return body
