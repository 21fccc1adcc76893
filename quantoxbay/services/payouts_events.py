"""Payout and balance events of sellers' connected accounts (the Connect endpoint).

The shop keeps no copy of payouts or balances: Stripe holds them and the payouts page reads them
when it renders (services.payouts). An event only tells the seller's open pages to read again.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session

from quantoxbay.services import connect, notifier
from quantoxbay.services.notifier import Announcement, seller_topic

logger = logging.getLogger(__name__)


def on_payout_event(*, session: Session, event: dict[str, Any]) -> list[Announcement]:
    """``payout.*`` / ``balance.available`` of a connected account: push the seller's pages."""
    account = str(event.get("account") or "")
    seller_id = connect.seller_for_account(session=session, stripe_account_id=account) if account else None
    if seller_id is None:
        return []  # the platform's own payouts, or an account that is not a seller's here
    obj = event["data"]["object"]
    if event["type"].startswith("payout."):
        log = logger.warning if event["type"] == "payout.failed" else logger.info
        log(
            event["type"],
            extra={"seller_id": seller_id, "account": account, "payout": obj.get("id"),
                   "amount_cents": obj.get("amount"), "currency": obj.get("currency"), "status": obj.get("status")},
        )  # fmt: skip
    announcement = Announcement(
        kind="payouts.payout", topics=(seller_topic(seller_id),), data={"type": event["type"]}
    )
    notifier.queue(session, announcement)  # published after the commit
    return [announcement]
