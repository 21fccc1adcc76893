"""Card checks and Stripe's test cards.

Numbers are checked like Stripe's card form (length, Luhn, expiry in the
future, CVC length); the test numbers from docs.stripe.com/testing then decide
the outcome. Any other well-formed number succeeds.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import Enum


class CardFieldError(Exception):
    """A card form value is malformed (shown next to the form, no charge made).

    Attributes:
        code: Stripe's error code (``incorrect_number``, ``invalid_expiry_year``...).
        field: The form field at fault.
    """

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message


class Action(Enum):
    """What the card network does with a charge."""

    SUCCEED = "succeed"
    DECLINE = "decline"
    AUTHENTICATE_THEN_SUCCEED = "3ds_succeed"
    AUTHENTICATE_THEN_DECLINE = "3ds_decline"
    SUCCEED_THEN_DISPUTE = "succeed_dispute"


@dataclass(frozen=True)
class Decline:
    """A card decline as Stripe reports it.

    Attributes:
        code: The error code (``card_declined``, ``expired_card``...).
        decline_code: The issuer's reason, if any.
        message: The message shown to the buyer.
        outcome_type: ``issuer_declined``, ``blocked`` or ``invalid``.
    """

    code: str
    decline_code: str | None
    message: str
    outcome_type: str = "issuer_declined"


GENERIC = "Your card was declined."

DECLINES = {
    "generic_decline": Decline("card_declined", "generic_decline", GENERIC),
    "insufficient_funds": Decline("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "lost_card": Decline("card_declined", "lost_card", GENERIC),
    "stolen_card": Decline("card_declined", "stolen_card", GENERIC),
    "expired_card": Decline("expired_card", "expired_card", "Your card has expired."),
    "incorrect_cvc": Decline("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
    "processing_error": Decline(
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "incorrect_number": Decline(
        "incorrect_number", "incorrect_number", "Your card number is incorrect.", "invalid"
    ),
    "fraudulent": Decline("card_declined", "fraudulent", GENERIC, "blocked"),
    "authentication_failed": Decline(
        "payment_intent_authentication_failure",
        None,
        "We are unable to authenticate your payment method. Please choose a different "
        "payment method and try again.",
    ),
}

#: Test card number -> (action, decline reason).
TEST_CARDS: dict[str, tuple[Action, str | None]] = {
    "4242424242424242": (Action.SUCCEED, None),
    "4000000000000002": (Action.DECLINE, "generic_decline"),
    "4000000000009995": (Action.DECLINE, "insufficient_funds"),
    "4000000000009987": (Action.DECLINE, "lost_card"),
    "4000000000009979": (Action.DECLINE, "stolen_card"),
    "4000000000000069": (Action.DECLINE, "expired_card"),
    "4000000000000127": (Action.DECLINE, "incorrect_cvc"),
    "4000000000000119": (Action.DECLINE, "processing_error"),
    "4242424242424241": (Action.DECLINE, "incorrect_number"),
    "4100000000000019": (Action.DECLINE, "fraudulent"),
    "4000002500003155": (Action.AUTHENTICATE_THEN_SUCCEED, None),
    "4000008400001629": (Action.AUTHENTICATE_THEN_DECLINE, "generic_decline"),
    "4000000000000259": (Action.SUCCEED_THEN_DISPUTE, None),
}

#: Cards whose refunds take a detour: pending then succeeded, or succeeded then failed.
REFUND_PENDING_CARDS = frozenset({"4000000000007726"})
REFUND_FAILS_CARDS = frozenset({"4000000000005126"})


@dataclass(frozen=True)
class Card:
    """A checked card.

    Attributes:
        number: Digits only.
        exp_month: 1-12.
        exp_year: Four digits.
        cvc: Digits.
        brand: ``visa``, ``mastercard``, ``amex``, ``discover`` or ``unknown``.
    """

    number: str
    exp_month: int
    exp_year: int
    cvc: str
    brand: str

    @property
    def last4(self) -> str:
        """The last four digits."""
        return self.number[-4:]

    @property
    def action(self) -> Action:
        """What happens when this card is charged."""
        return TEST_CARDS.get(self.number, (Action.SUCCEED, None))[0]

    @property
    def decline(self) -> Decline | None:
        """The decline this card produces (after 3-D Secure, if it needs it)."""
        reason = TEST_CARDS.get(self.number, (Action.SUCCEED, None))[1]
        return DECLINES[reason] if reason else None


def luhn_ok(number: str) -> bool:
    """Tell whether a digit string passes the Luhn check."""
    total = 0
    for i, char in enumerate(reversed(number)):
        digit = int(char)
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def brand_of(number: str) -> str:
    """Guess the card brand from its leading digits."""
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"34", "37"}:
        return "amex"
    if 51 <= int(number[:2]) <= 55 or 2221 <= int(number[:4]) <= 2720:
        return "mastercard"
    if number.startswith(("6011", "65")):
        return "discover"
    return "unknown"


def parse_expiry(text: str, today: dt.date | None = None) -> tuple[int, int]:
    """Parse ``MM/YY`` (or ``MM / YY``, ``MM/YYYY``) and check it is not past.

    Returns:
        ``(month, four_digit_year)``.

    Raises:
        CardFieldError: Malformed, impossible or past dates.
    """
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", text or "")
    if not match:
        raise CardFieldError("invalid_expiry_month", "expiry", "Your card's expiration date is incomplete.")
    month, year = int(match.group(1)), int(match.group(2))
    if year < 100:
        year += 2000
    if not 1 <= month <= 12:
        raise CardFieldError("invalid_expiry_month", "expiry", "Your card's expiration month is invalid.")
    today = today or dt.date.today()
    if (year, month) < (today.year, today.month):
        raise CardFieldError("invalid_expiry_year", "expiry", "Your card's expiration year is in the past.")
    if year > today.year + 50:
        raise CardFieldError("invalid_expiry_year", "expiry", "Your card's expiration year is invalid.")
    return month, year


def check_card(number: str, expiry: str, cvc: str, today: dt.date | None = None) -> Card:
    """Check the card form's values the way Stripe's card form does.

    Args:
        number: The card number (spaces and dashes allowed).
        expiry: ``MM/YY``.
        cvc: The security code.
        today: Override of the current date (tests).

    Returns:
        The checked card.

    Raises:
        CardFieldError: The number is incomplete or fails Luhn
            (``incorrect_number``), the expiry is bad or past, or the CVC has
            the wrong length.
    """
    digits = re.sub(r"[\s-]", "", number or "")
    if not digits.isdigit() or len(digits) < 13:
        raise CardFieldError("incomplete_number", "card_number", "Your card number is incomplete.")
    if len(digits) > 19 or not luhn_ok(digits):
        raise CardFieldError("incorrect_number", "card_number", DECLINES["incorrect_number"].message)
    brand = brand_of(digits)
    month, year = parse_expiry(expiry, today)
    code = (cvc or "").strip()
    wanted = 4 if brand == "amex" else 3
    if not code.isdigit() or len(code) not in (3, 4) or (brand == "amex") != (len(code) == 4):
        message = (
            "Your card's security code is incomplete."
            if not code.isdigit() or len(code) < wanted
            else "Your card's security code is invalid."
        )
        raise CardFieldError("invalid_cvc", "cvc", message)
    return Card(number=digits, exp_month=month, exp_year=year, cvc=code, brand=brand)
