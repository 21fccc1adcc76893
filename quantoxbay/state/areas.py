"""Library, seller and admin area states. Every handler re-checks the role on the server."""

from __future__ import annotations

import reflex as rx

from quantoxbay.models import Role
from quantoxbay.services import PermissionDenied, catalog
from quantoxbay.services.money import format_money
from quantoxbay.state.session import SessionState, run_service


class SellerHomeState(rx.State):
    products: list[dict] = []
    loaded: bool = False

    @rx.event
    async def load(self):  # type: ignore[no-untyped-def]
        session_state = await self.get_state(SessionState)
        try:
            user = await session_state.require_user(Role.SELLER)
        except PermissionDenied as exc:
            self.products, self.loaded = [], False
            return rx.toast.error(str(exc))
        rows = await run_service(catalog.list_seller_products, seller_id=user.id)
        self.products = [
            {
                "id": p.id,
                "title": p.title,
                "status": p.status,
                "price": format_money(p.price_cents, p.currency),
                "sales": p.sales_count,
            }
            for p in rows
        ]
        self.loaded = True
        return None
