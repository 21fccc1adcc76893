"""Sellers with payouts set up on the embedded Stripe, as the seller would by onboarding."""

from __future__ import annotations

import httpx
from sqlmodel import Session

from quantoxbay.models import SellerAccount
from quantoxbay.payments.gateway import StripeGateway
from quantoxbay.services import connect
from tests.stripe_keys import bearer


def onboard_seller(
    db: Session, gateway: StripeGateway, seller_id: int, stripe_base_url: str, **form: str
) -> SellerAccount:
    """Open the seller's connected account through the shop's own service, fill in the embedded
    Stripe's onboarding form with test data (``form`` overrides fields: a magic value leaves
    requirements due), then read the account back as the payouts page does."""
    account = connect.ensure_account(session=db, gateway=gateway, seller_id=seller_id)
    done = httpx.post(
        f"{stripe_base_url}/_local/accounts/{account.stripe_account_id}/onboard",
        data=form,
        headers=bearer(),
        timeout=30,
    )
    assert done.status_code == 200, done.text
    connect.refresh_account(session=db, gateway=gateway, seller_id=seller_id)
    db.refresh(account)
    return account
