"""The product page's purchase box ("Buy now" / "Download"), owned by the payments flow."""

from __future__ import annotations

import reflex as rx


def buy_box() -> rx.Component:
    """Rendered on the product page under the price."""
    return rx.fragment()
