"""The platform's fee on a sale, in integer cents.

The fee is ``PLATFORM_FEE_PERCENT`` of the amount the buyer actually paid (after any discount,
the pay-what-you-want amount included), plus ``PLATFORM_FEE_FIXED_CENTS``:

    fee = round_half_up(paid * basis_points / 10_000) + fixed, at most ``paid``

- The percentage is kept in basis points (10 % = 1000) so nothing is a float; half a cent rounds
  up (12.5 cents -> 13), as Stripe rounds percentage coupons.
- A sale that costs the buyer nothing (a 100%-off code) pays no fee: there is no charge to take it
  from, and Stripe refuses an application fee larger than the charge, so the fee is capped at the
  amount paid (a $0.50 sale with a 60-cent fixed fee pays 50 cents and leaves the seller nothing).
- The seller's share is what is left: ``paid - fee``; it is what Stripe transfers to the seller's
  connected account for a destination charge.
"""

from __future__ import annotations

from dataclasses import dataclass

BASIS_POINTS_PER_WHOLE = 10_000


@dataclass(frozen=True)
class FeeSchedule:
    """The fee settings in force when a Checkout Session was created (kept with its record, so a
    changed setting never re-prices a sale that is already under way)."""

    basis_points: int
    fixed_cents: int

    def __post_init__(self) -> None:
        if not 0 <= self.basis_points <= BASIS_POINTS_PER_WHOLE or self.fixed_cents < 0:
            raise ValueError(f"invalid fee schedule: {self.basis_points} bp + {self.fixed_cents} cents")

    def fee_cents(self, paid_cents: int) -> int:
        """The platform's fee on a sale of ``paid_cents``."""
        if paid_cents < 0:
            raise ValueError("a sale cannot pay a negative amount")
        if paid_cents == 0:
            return 0
        percentage = (paid_cents * self.basis_points + BASIS_POINTS_PER_WHOLE // 2) // BASIS_POINTS_PER_WHOLE
        return min(paid_cents, percentage + self.fixed_cents)

    def seller_share_cents(self, paid_cents: int) -> int:
        """What the seller receives of a sale of ``paid_cents``."""
        return paid_cents - self.fee_cents(paid_cents)


#: The schedule of a sale that is not a destination charge (the platform keeps it all).
NO_FEES = FeeSchedule(0, 0)


def proportional_cents(part_cents: int, of_cents: int, whole_cents: int) -> int:
    """``part * of / whole`` rounded half up: the share of ``of`` that a refund of ``part`` out of
    ``whole`` takes back (the refunded share of a fee or of a transfer)."""
    if whole_cents <= 0:
        return 0
    return (part_cents * of_cents * 2 + whole_cents) // (2 * whole_cents)
