"""Pages shared by every area (the seller dashboard is pages/dashboard.py, the admin panel pages/admin.py)."""

from __future__ import annotations

import reflex as rx

from quantoxbay import routes
from quantoxbay.components.layout import button_link, empty_state, page


def not_found_page() -> rx.Component:
    return page(
        empty_state(
            "map-pin-off",
            "Page not found",
            "The page you are looking for does not exist or has moved.",
            button_link("Back to the store", routes.STOREFRONT),
        ),
    )
