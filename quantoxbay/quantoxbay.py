"""The Reflex app: pages, and the API mounted in front of Reflex's own routes."""

from __future__ import annotations

from pathlib import Path

import reflex as rx
from reflex import constants
from reflex.utils import prerequisites

from quantoxbay import routes
from quantoxbay.api import build_api
from quantoxbay.api.live import start_live_pushes
from quantoxbay.api.page_meta import page_meta_middleware
from quantoxbay.api.security import security_middleware
from quantoxbay.logs import configure_logging
from quantoxbay.pages.admin import admin_page
from quantoxbay.pages.areas import not_found_page
from quantoxbay.pages.auth import (
    forgot_password_page,
    login_page,
    reset_password_page,
    signup_page,
    verify_email_page,
)
from quantoxbay.pages.checkout import library_page, success_page
from quantoxbay.pages.dashboard import seller_dashboard_page
from quantoxbay.pages.payouts import payouts_page
from quantoxbay.pages.promotions import promotions_page
from quantoxbay.pages.seller_orders import seller_orders_page
from quantoxbay.pages.seller_products import edit_product_page, new_product_page, seller_products_page
from quantoxbay.pages.storefront import product_page, seller_public_page, storefront
from quantoxbay.state.admin import AdminState
from quantoxbay.state.auth_forms import AuthFormState
from quantoxbay.state.catalog import ProductState, SellerPageState, StorefrontState
from quantoxbay.state.checkout import BuyBoxState, CheckoutSuccessState, LibraryState
from quantoxbay.state.dashboard import DashboardState
from quantoxbay.state.payouts import PayoutsState
from quantoxbay.state.promotions import PromotionsState
from quantoxbay.state.recovery import ResetPasswordState, VerifyEmailState
from quantoxbay.state.seller_orders import SellerOrdersState
from quantoxbay.state.seller_products import ProductFormState, SellerProductsState
from quantoxbay.state.session import SessionState

# States that refresh themselves when a service announces a change (see api/live.py).
LIVE_STATES: list[type[rx.State]] = [
    CheckoutSuccessState,
    LibraryState,
    SellerOrdersState,
    DashboardState,
    PayoutsState,
]


async def _page_user(client_token: str) -> int:
    """Who the page session behind an upload is logged in as (set from its own websocket's cookie)."""
    async with app.modify_state(rx.BaseStateToken(ident=client_token, cls=SessionState)) as root:
        return (await root.get_state(SessionState)).user_id


def _exported_frontend() -> Path:
    """Where `reflex run --env prod` exports the pages it serves (the SPA shell among them)."""
    return (prerequisites.get_web_dir() / constants.Dirs.STATIC).resolve()


configure_logging()
api = build_api()
app = rx.App(
    # Our routes in front of Reflex's; product and seller pages with their own head tags
    # (api/page_meta.py); then one security layer around all of it (api/security.py).
    api_transformer=[
        api,
        page_meta_middleware(_exported_frontend()),
        security_middleware(page_user=_page_user),
    ],
    stylesheets=[],
    head_components=[
        rx.el.meta(name="description", content="QuantoxBay: digital products from independent creators")
    ],
)

# --- buyers ---------------------------------------------------------------------
app.add_page(
    storefront,
    route=routes.STOREFRONT,
    title="QuantoxBay",
    on_load=[SessionState.load_session, StorefrontState.load],
)
app.add_page(
    product_page,
    route=routes.PRODUCT,
    title="Product · QuantoxBay",
    on_load=[SessionState.load_session, ProductState.load, BuyBoxState.load],
)
app.add_page(
    seller_public_page,
    route=routes.SELLER_PAGE,
    title="Seller · QuantoxBay",
    on_load=[SessionState.load_session, SellerPageState.load],
)
app.add_page(
    library_page,
    route=routes.LIBRARY,
    title="Library · QuantoxBay",
    on_load=[SessionState.guard_logged_in, LibraryState.load],
)
app.add_page(
    success_page,
    route=routes.CHECKOUT_SUCCESS,
    title="Order confirmation · QuantoxBay",
    on_load=[SessionState.load_session, CheckoutSuccessState.load],
)

# --- accounts -------------------------------------------------------------------
app.add_page(
    login_page,
    route=routes.LOGIN,
    title="Log in · QuantoxBay",
    on_load=[SessionState.load_session, AuthFormState.clear],
)
app.add_page(
    signup_page,
    route=routes.SIGNUP,
    title="Sign up · QuantoxBay",
    on_load=[SessionState.load_session, AuthFormState.clear],
)
app.add_page(
    forgot_password_page,
    route=routes.FORGOT_PASSWORD,
    title="Reset your password · QuantoxBay",
    # No reset on load: a load that ran after a quick submit would wipe its answer. A tab that
    # comes back shows its last answer, with "Send another link".
    on_load=SessionState.load_session,
)
app.add_page(
    reset_password_page,
    route=routes.RESET_PASSWORD,
    title="Choose a new password · QuantoxBay",
    on_load=[SessionState.load_session, ResetPasswordState.load],
)
app.add_page(
    verify_email_page,
    route=routes.VERIFY_EMAIL,
    title="E-mail verification · QuantoxBay",
    on_load=[VerifyEmailState.load],
)

# --- sellers --------------------------------------------------------------------
app.add_page(
    seller_dashboard_page,
    route=routes.SELLER,
    title="Seller · QuantoxBay",
    on_load=[SessionState.guard_seller, DashboardState.load],
)
app.add_page(
    seller_products_page,
    route=routes.SELLER_PRODUCTS,
    title="Your products · QuantoxBay",
    on_load=[SessionState.guard_seller, SellerProductsState.load],
)
app.add_page(
    new_product_page,
    route=routes.SELLER_PRODUCTS_NEW,
    title="New product · QuantoxBay",
    on_load=[SessionState.guard_seller, ProductFormState.load_new],
)
app.add_page(
    seller_orders_page,
    route=routes.SELLER_ORDERS,
    title="Orders · QuantoxBay",
    on_load=[SessionState.guard_seller, SellerOrdersState.load],
)
app.add_page(
    edit_product_page,
    route=routes.SELLER_PRODUCT_EDIT,
    title="Edit product · QuantoxBay",
    on_load=[SessionState.guard_seller, ProductFormState.load_edit],
)
app.add_page(
    promotions_page,
    route=routes.SELLER_PROMOTIONS,
    title="Promotions · QuantoxBay",
    on_load=[SessionState.guard_seller, PromotionsState.load],
)
app.add_page(
    payouts_page,
    route=routes.SELLER_PAYOUTS,
    title="Payouts · QuantoxBay",
    on_load=[SessionState.guard_seller, PayoutsState.load],
)

# --- admins ---------------------------------------------------------------------
app.add_page(
    admin_page,
    route=routes.ADMIN,
    title="Admin · QuantoxBay",
    on_load=[SessionState.guard_admin, AdminState.load],
)

app.add_page(not_found_page, route="404", title="Not found · QuantoxBay", on_load=SessionState.load_session)


@app.register_lifespan_task
async def _live_pushes() -> None:
    """Pages that registered interest get pushes when their order or sales change."""
    start_live_pushes(app, LIVE_STATES)


@app.register_lifespan_task
async def _embedded_stripe() -> None:
    """Resume the embedded Stripe's pending webhook deliveries (a mounted app gets no lifespan)."""
    runtime = getattr(api.state, "stripe_local", None)
    if runtime is not None:
        runtime.ensure_started()


@app.register_lifespan_task
async def _ledger() -> None:
    """Read sales' charges back and make the transfers disputes owe, off the webhook."""
    from quantoxbay.payments.gateway import get_gateway
    from quantoxbay.services.ledger import start_worker

    start_worker(get_gateway)


@app.register_lifespan_task
async def _mail_outbox() -> None:
    """Send queued receipts off the webhook's critical path (woken by paid orders and resends)."""
    from quantoxbay.services.receipts import start_outbox_worker

    start_outbox_worker()
