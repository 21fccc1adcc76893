"""Currency helpers: minor units, minimum charge amounts, display formatting."""

from __future__ import annotations

ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$", "inr": "₹"}

#: Stripe's minimum charge amounts (minor units) for common currencies.
MINIMUM_CHARGE = {
    "usd": 50,
    "eur": 50,
    "gbp": 30,
    "cad": 50,
    "aud": 50,
    "chf": 50,
    "nzd": 50,
    "sgd": 50,
    "hkd": 400,
    "jpy": 50,
    "dkk": 250,
    "nok": 300,
    "sek": 300,
    "mxn": 1000,
}


def minimum_charge(currency: str) -> int | None:
    """Return the smallest chargeable amount in ``currency``'s minor units, if known."""
    return MINIMUM_CHARGE.get(currency.lower())


def format_amount(amount: int, currency: str) -> str:
    """Format minor units for people, e.g. ``format_amount(1999, "usd") == "$19.99"``.

    Args:
        amount: Amount in the currency's minor units (may be negative).
        currency: Lower-case ISO code.
    """
    code = currency.lower()
    sign = "-" if amount < 0 else ""
    value = abs(amount)
    number = f"{value:,}" if code in ZERO_DECIMAL else f"{value // 100:,}.{value % 100:02d}"
    symbol = SYMBOLS.get(code)
    if symbol:
        return f"{sign}{symbol}{number}"
    return f"{sign}{number} {code.upper()}"
