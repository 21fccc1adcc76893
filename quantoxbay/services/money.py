"""Money is integer cents plus a lowercase ISO currency; these helpers parse and show it."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from quantoxbay.services import DomainError

SUPPORTED_CURRENCIES = {"usd": "$", "eur": "€", "gbp": "£", "inr": "₹", "cad": "CA$", "aud": "A$"}
MAX_PRICE_CENTS = 100_000_00  # 100,000.00: a guard against typos, not a business rule.
_AMOUNT_RE = re.compile(r"^\d{1,9}(\.\d{1,2})?$")


def parse_price(text: str) -> int:
    """'12.5' -> 1250. Raises DomainError with a clear message for anything else."""
    cleaned = text.strip().replace(",", "").lstrip("$€£₹")
    if not _AMOUNT_RE.match(cleaned):
        raise DomainError("Enter a price like 9.99 (at most two decimals, no negative amounts).")
    try:
        cents = int((Decimal(cleaned) * 100).to_integral_exact())
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise DomainError("Enter a price like 9.99.") from exc
    if cents > MAX_PRICE_CENTS:
        raise DomainError("Prices above 100,000.00 are not accepted.")
    return cents


def validate_currency(currency: str) -> str:
    code = currency.strip().lower()
    if code not in SUPPORTED_CURRENCIES:
        raise DomainError(
            f"Unsupported currency {currency!r}; choose one of {', '.join(sorted(SUPPORTED_CURRENCIES))}."
        )
    return code


def format_money(cents: int, currency: str = "usd") -> str:
    """1250, 'usd' -> '$12.50'; 0 -> 'Free' (a price)."""
    if cents == 0:
        return "Free"
    return format_amount(cents, currency)


def format_amount(cents: int, currency: str = "usd") -> str:
    """1250, 'usd' -> '$12.50'; 0 -> '$0.00' (a balance or a fee, where zero is not "free")."""
    symbol = SUPPORTED_CURRENCIES.get(currency.lower(), currency.upper() + " ")
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{symbol}{whole:,}.{frac:02d}"


#: The smallest charge Stripe accepts in each supported currency (a charge below it is refused).
MIN_CHARGE_CENTS = {"usd": 50, "eur": 50, "gbp": 30, "inr": 50, "cad": 50, "aud": 50}


def min_charge_cents(currency: str) -> int:
    """Stripe's minimum charge in ``currency`` (50 cents where Stripe has no lower one)."""
    return MIN_CHARGE_CENTS.get(currency.lower(), 50)


def amount_text(cents: int) -> str:
    """1250 -> '12.50': an amount as a form field shows it, which ``parse_price`` reads back."""
    whole, frac = divmod(cents, 100)
    return f"{whole}.{frac:02d}"
