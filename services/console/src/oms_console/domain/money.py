"""Money as staff read and type it: "12.50 EUR" for 1250 minor units."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# ISO 4217 minor units where they are not 2.
_EXPONENTS = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def format_money(minor: int | None, currency: str | None) -> str:
    if minor is None or not currency:
        return "-"
    places = exponent(currency)
    value = Decimal(minor).scaleb(-places)
    return f"{value:,.{places}f} {currency}"


def parse_amount(text: str, currency: str) -> int:
    """ "12.5" -> 1250 for EUR. Raises ValueError with a message for the form."""
    places = exponent(currency)
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation as exc:
        raise ValueError(f"give an amount like {Decimal(1234).scaleb(-places)}") from exc
    if not value.is_finite() or value <= 0:
        raise ValueError("give an amount above zero")
    minor = value.scaleb(places)
    if minor != minor.to_integral_value():
        raise ValueError(f"{currency} has {places} decimal places")
    return int(minor)
