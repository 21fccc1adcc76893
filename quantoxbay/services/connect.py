"""Sellers' Stripe connected accounts: onboarding, status, the dashboard link.

A seller gets one Express account (created on the first "Set up payouts", idempotent by the
seller's id, so two clicks or a rolled-back transaction never make two). Stripe hosts the
onboarding form; what the shop knows of the account comes from Stripe only: the account as
created, ``account.updated`` events (Connect endpoint) and a fresh retrieve when the seller comes
back from the form. Coming back does not mean done: the flags say.

A seller sells priced products only while the account's charges are enabled (checkout makes each
sale a destination charge to it); free products need no account.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from quantoxbay import routes
from quantoxbay.db import insert_rows
from quantoxbay.models import Role, SellerAccount, User, utcnow
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import DomainError, PermissionDenied, notifier, recovery
from quantoxbay.services.notifier import Announcement, seller_topic

logger = logging.getLogger(__name__)

#: The country new connected accounts are opened in (Stripe asks the seller for the rest).
ACCOUNT_COUNTRY = "US"

NOT_SET_UP = "Not set up"
PAYOUTS_ENABLED = "Payouts enabled"
ACTION_REQUIRED = "Action required"

#: The publish and checkout error for a seller whose account cannot take charges yet.
CHARGES_NOT_ENABLED = (
    "Set up payouts before selling priced products: finish Stripe's onboarding on the Payouts page. "
    "Free products can be published any time."
)


@dataclass(frozen=True)
class PayoutStatus:
    """What the payouts page says of a seller's account."""

    has_account: bool
    stripe_account_id: str
    details_submitted: bool
    charges_enabled: bool
    payouts_enabled: bool
    requirements_due: tuple[str, ...]
    disabled_reason: str

    @property
    def label(self) -> str:
        if not self.has_account:
            return NOT_SET_UP
        if self.charges_enabled and self.payouts_enabled and not self.requirements_due:
            return PAYOUTS_ENABLED
        return ACTION_REQUIRED

    @property
    def needs(self) -> list[str]:
        """What is due, in words a seller understands."""
        if not self.has_account:
            return []
        needs = [describe_requirement(r) for r in self.requirements_due]
        if self.disabled_reason:
            reason = self.disabled_reason.replace(".", " ").replace("_", " ")
            needs.insert(0, f"Stripe has paused this account ({reason}).")
        if not self.details_submitted and not needs:
            needs.append("Finish Stripe's onboarding form.")
        return needs


NO_ACCOUNT = PayoutStatus(False, "", False, False, False, (), "")


def describe_requirement(requirement: str) -> str:
    """``individual.verification.document`` -> ``Individual verification document``."""
    words = requirement.replace(".", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _status(account: SellerAccount | None) -> PayoutStatus:
    if account is None:
        return NO_ACCOUNT
    due = tuple(r for r in account.requirements_due.split(",") if r)
    return PayoutStatus(
        True,
        account.stripe_account_id,
        account.details_submitted,
        account.charges_enabled,
        account.payouts_enabled,
        due,
        account.disabled_reason,
    )


def seller_account(*, session: Session, seller_id: int) -> SellerAccount | None:
    return session.exec(select(SellerAccount).where(SellerAccount.user_id == seller_id)).first()


def payout_status(*, session: Session, seller_id: int) -> PayoutStatus:
    return _status(seller_account(session=session, seller_id=seller_id))


def chargeable_account_id(*, session: Session, seller_id: int) -> str:
    """The account a sale of this seller's is paid to; refused while it cannot take charges."""
    account = seller_account(session=session, seller_id=seller_id)
    if account is None or not account.charges_enabled:
        raise DomainError(CHARGES_NOT_ENABLED)
    return account.stripe_account_id


def require_charges_enabled(*, session: Session, seller_id: int) -> None:
    chargeable_account_id(session=session, seller_id=seller_id)


def _seller(session: Session, seller_id: int) -> User:
    user = session.get(User, seller_id)
    if user is None or user.disabled or user.role not in (Role.SELLER.value, Role.ADMIN.value):
        raise PermissionDenied("Only sellers can set up payouts.")
    return user


def _requirements(account: Mapping[str, Any]) -> tuple[str, ...]:
    requirements = account.get("requirements") or {}
    due: list[str] = []
    for key in ("past_due", "currently_due"):
        for item in requirements.get(key) or []:
            if str(item) not in due:
                due.append(str(item))
    return tuple(due)


def _account_values(account: Mapping[str, Any]) -> dict[str, Any]:
    requirements = account.get("requirements") or {}
    return {
        "details_submitted": bool(account.get("details_submitted")),
        "charges_enabled": bool(account.get("charges_enabled")),
        "payouts_enabled": bool(account.get("payouts_enabled")),
        "requirements_due": ",".join(_requirements(account))[:4000],
        "disabled_reason": str(requirements.get("disabled_reason") or "")[:255],
    }


def _as_dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def ensure_account(*, session: Session, gateway: StripeGateway, seller_id: int) -> SellerAccount:
    """The seller's connected account, created at Stripe (once) and recorded when missing."""
    existing = seller_account(session=session, seller_id=seller_id)
    if existing is not None:
        return existing
    user = _seller(session, seller_id)
    created = _as_dict(gateway.create_account(user_id=seller_id, email=user.email, country=ACCOUNT_COUNTRY))
    # Two first clicks at once: Stripe replays the same account to both (idempotency key); the
    # unique user_id keeps one row.
    insert_rows(
        session.connection(),
        SellerAccount.__table__,  # type: ignore[attr-defined]
        [
            {
                "user_id": seller_id,
                "stripe_account_id": str(created["id"]),
                "stripe_updated": int(time.time()),
                "created_at": utcnow(),
                "updated_at": utcnow(),
                **_account_values(created),
            }
        ],
        skip_conflicts_on=("user_id",),
    )
    logger.info("payouts.account_created", extra={"seller_id": seller_id, "account": created["id"]})
    account = seller_account(session=session, seller_id=seller_id)
    assert account is not None
    return account


def start_onboarding(*, session: Session, gateway: StripeGateway, seller_id: int, public_url: str) -> str:
    """ "Set up payouts": the URL of Stripe's onboarding form for the seller's account (made first
    when needed). Stripe sends the seller back to the payouts page either way. Refused until the
    seller's e-mail address is verified."""
    recovery.require_verified_email(session=session, user_id=seller_id)
    account = ensure_account(session=session, gateway=gateway, seller_id=seller_id)
    page = f"{public_url}{routes.SELLER_PAYOUTS}"
    link = gateway.create_onboarding_link(
        account=account.stripe_account_id,
        refresh_url=f"{page}?onboarding=refresh",
        return_url=f"{page}?onboarding=return",
    )
    return str(link.url)


def dashboard_link(*, session: Session, gateway: StripeGateway, seller_id: int) -> str:
    """ "Open Stripe dashboard": a single-use link into the seller's Express dashboard."""
    account = seller_account(session=session, seller_id=seller_id)
    if account is None or not account.details_submitted:
        raise DomainError("Finish setting up payouts first.")
    return str(gateway.create_login_link(account.stripe_account_id).url)


def refresh_account(*, session: Session, gateway: StripeGateway, seller_id: int) -> PayoutStatus:
    """Read the seller's account from Stripe now (the seller is back from the form)."""
    account = seller_account(session=session, seller_id=seller_id)
    if account is None:
        return NO_ACCOUNT
    fresh = _as_dict(gateway.retrieve_account(account.stripe_account_id))
    apply_account_update(session=session, account=fresh, stripe_updated=int(time.time()))
    return payout_status(session=session, seller_id=seller_id)


def apply_account_update(*, session: Session, account: Mapping[str, Any], stripe_updated: int) -> bool:
    """Record what Stripe says of a connected account (``account.updated``, or a retrieve at
    ``stripe_updated``). A fact older than the one recorded changes nothing (events come in any
    order). Returns whether the row changed; the seller's pages hear of it after the commit."""
    account_id = str(account.get("id") or "")
    values = _account_values(account)
    moved = session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
        update(SellerAccount)
        .where(
            col(SellerAccount.stripe_account_id) == account_id,
            col(SellerAccount.stripe_updated) <= stripe_updated,
        )
        .values(**values, stripe_updated=stripe_updated, updated_at=utcnow())
    ).rowcount
    if moved != 1:
        return False
    seller_id = session.exec(
        select(SellerAccount.user_id).where(SellerAccount.stripe_account_id == account_id)
    ).one()
    status = payout_status(session=session, seller_id=seller_id)
    logger.info(
        "payouts.account_updated",
        extra={"seller_id": seller_id, "account": account_id, "charges_enabled": status.charges_enabled,
               "payouts_enabled": status.payouts_enabled, "due": len(status.requirements_due)},
    )  # fmt: skip
    notifier.queue(
        session,
        Announcement(
            kind="payouts.account", topics=(seller_topic(seller_id),), data={"status": status.label}
        ),
    )
    return True


def apply_deauthorization(*, session: Session, stripe_account_id: str, stripe_updated: int) -> bool:
    """``account.application.deauthorized``: the seller disconnected their account from the
    platform, which can no longer charge on its behalf. Their priced products stop selling until
    they set up payouts again (checkout refuses, the payouts page says so)."""
    return apply_account_update(
        session=session,
        account={
            "id": stripe_account_id,
            "details_submitted": True,
            "charges_enabled": False,
            "payouts_enabled": False,
            "requirements": {"disabled_reason": "platform_disconnected"},
        },
        stripe_updated=stripe_updated,
    )


def seller_for_account(*, session: Session, stripe_account_id: str) -> int | None:
    return session.exec(
        select(SellerAccount.user_id).where(SellerAccount.stripe_account_id == stripe_account_id)
    ).first()
