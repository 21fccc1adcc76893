"""Storefront `/`, product page `/products/[product_id]` and seller page `/sellers/[handle]`."""

from __future__ import annotations

import reflex as rx
from reflex.vars import ObjectVar

from quantoxbay import routes
from quantoxbay.components.buy_box import buy_box
from quantoxbay.components.countdown import countdown
from quantoxbay.components.layout import button_link, empty_state, loading_block, page
from quantoxbay.components.product_card import cover_image, product_grid
from quantoxbay.constants import CATEGORIES, SORT_ORDERS
from quantoxbay.state.catalog import ALL_CATEGORIES, ProductState, SellerPageState, StorefrontState


def _filters() -> rx.Component:
    s = StorefrontState
    return rx.flex(
        rx.input(
            rx.input.slot(rx.icon("search", size=16)),
            placeholder="Search products",
            aria_label="Search products",
            type="search",
            value=s.query,
            on_change=s.set_query,
            debounce_timeout=300,
            size="3",
            flex="1",
            min_width="14em",
        ),
        rx.select.root(
            rx.select.trigger(aria_label="Category", placeholder="Category"),
            rx.select.content(
                rx.select.item("All categories", value=ALL_CATEGORIES),
                *[rx.select.item(label, value=value) for value, label in CATEGORIES.items()],
            ),
            value=s.category,
            on_change=s.set_category,
            size="3",
        ),
        rx.select.root(
            rx.select.trigger(aria_label="Sort by"),
            rx.select.content(*[rx.select.item(label, value=value) for value, label in SORT_ORDERS.items()]),
            value=s.sort,
            on_change=s.set_sort,
            size="3",
        ),
        rx.hstack(
            rx.input(
                placeholder="Min price",
                aria_label="Min price",
                value=s.min_price,
                on_change=s.set_min_price,
                on_blur=s.apply_prices,
                input_mode="decimal",
                width="7em",
                size="3",
            ),
            rx.input(
                placeholder="Max price",
                aria_label="Max price",
                value=s.max_price,
                on_change=s.set_max_price,
                on_blur=s.apply_prices,
                input_mode="decimal",
                width="7em",
                size="3",
            ),
            spacing="2",
        ),
        gap="3",
        wrap="wrap",
        width="100%",
        padding_bottom="1.5em",
        as_="search",
    )


def _pager() -> rx.Component:
    s = StorefrontState
    return rx.hstack(
        rx.button(
            rx.icon("chevron-left", size=16),
            "Previous",
            variant="soft",
            disabled=s.page_number <= 1,
            on_click=s.previous_page,
        ),
        rx.text("Page ", s.page_number, size="2", color=rx.color("gray", 11)),
        rx.button(
            "Next",
            rx.icon("chevron-right", size=16),
            variant="soft",
            disabled=~s.next_cursor.bool(),
            on_click=s.next_page,
        ),
        justify="center",
        align="center",
        spacing="4",
        width="100%",
        padding_top="2em",
    )


def storefront() -> rx.Component:
    s = StorefrontState
    no_match = empty_state(
        "search-x",
        "Nothing matches",
        "Try fewer words, another category or a wider price range.",
        rx.button("Clear filters", variant="soft", on_click=s.clear_filters),
    )
    nothing_yet = empty_state(
        "store", "No products yet", "Sellers have not published anything yet. Check back soon."
    )
    return page(
        rx.vstack(
            rx.heading("Digital products from independent creators", size="7"),
            rx.text(
                "E-books, templates, presets, code and audio. Pay securely, download instantly.",
                color=rx.color("gray", 11),
            ),
            spacing="2",
            padding_bottom="1.5em",
        ),
        _filters(),
        rx.cond(s.error != "", rx.callout(s.error, icon="triangle-alert", color_scheme="red", role="alert")),
        rx.cond(
            s.loading,
            loading_block(),
            rx.cond(
                s.products.length() > 0,
                rx.box(product_grid(s.products), _pager(), width="100%"),
                rx.cond(s.has_filters, no_match, nothing_yet),
            ),
        ),
    )


#: What the page's CSS reset takes from a seller's Markdown, given back: list bullets and
#: numbers, links that look like links (not by colour alone), headings, code and quotes.
DESCRIPTION_STYLE = {
    "& ul": {"list_style_type": "disc", "padding_left": "1.5em", "margin": "0.5em 0"},
    "& ol": {"list_style_type": "decimal", "padding_left": "1.5em", "margin": "0.5em 0"},
    "& li": {"margin": "0.25em 0"},
    "& a": {"color": "var(--accent-11)", "text_decoration": "underline"},
    "& h1, & h2, & h3": {"font_weight": "600", "margin": "0.8em 0 0.4em"},
    "& h1": {"font_size": "1.4em"},
    "& h2": {"font_size": "1.25em"},
    "& h3": {"font_size": "1.1em"},
    "& p": {"margin": "0.5em 0"},
    "& code": {"font_family": "monospace", "background": "var(--gray-3)", "padding": "0 0.25em"},
    "& pre": {"background": "var(--gray-3)", "padding": "0.75em", "overflow_x": "auto"},
    "& blockquote": {"border_left": "3px solid var(--gray-6)", "padding_left": "0.75em"},
}


def product_page() -> rx.Component:
    # An ObjectVar for mypy; at run time it keeps catalog.ProductDetail (each field access is checked).
    p: ObjectVar = ProductState.product.to(ObjectVar)
    body = rx.grid(
        cover_image(p["cover_page_url"], "22em", icon_size=72),
        rx.vstack(
            rx.heading(p["title"], size="8", as_="h1"),
            rx.text(
                "by ",
                rx.cond(
                    p["seller_handle"],
                    rx.link(rx.text.strong(p["seller_name"]), href="/sellers/" + p["seller_handle"].to(str)),
                    rx.text.strong(p["seller_name"]),
                ),
                color=rx.color("gray", 11),
            ),
            rx.hstack(
                rx.heading(p["price_label"], size="6", color=rx.color("accent", 11)),
                rx.cond(
                    p["on_sale"],
                    rx.text(
                        p["regular_price_label"],
                        size="3",
                        color=rx.color("gray", 10),
                        text_decoration="line-through",
                        aria_label="Regular price",
                    ),
                ),
                rx.cond(p["on_sale"], rx.badge("On sale", color_scheme="red")),
                align="center",
                spacing="3",
            ),
            rx.cond(
                ProductState.sale_ends_at_ms > 0,
                countdown(
                    ProductState.sale_ends_at_ms,
                    # mypy reads reflex's rx.event as returning its namespace, not the handler
                    ProductState.load,  # type: ignore[arg-type]
                    label="Sale ends in",
                    element_id="qb-sale-countdown",
                ),
            ),
            buy_box(),
            # Rendered from markdown and sanitised (nh3) on the server: no seller script runs here.
            rx.box(
                rx.html(p["description_html"].to(str)),
                class_name="qb-description",
                width="100%",
                style=DESCRIPTION_STYLE,
            ),
            rx.heading("What you get", size="3", padding_top="1em"),
            rx.vstack(
                rx.foreach(
                    ProductState.files,
                    lambda f: rx.hstack(
                        rx.icon("file", size=16),
                        rx.text(f["filename"], size="2"),
                        rx.text(f["size_label"], size="2", color=rx.color("gray", 10)),
                        spacing="2",
                        align="center",
                    ),
                ),
                spacing="1",
                as_="ul",
                aria_label="Files",
            ),
            spacing="3",
            align="start",
        ),
        columns=rx.breakpoints(initial="1", md="2"),
        spacing="6",
        width="100%",
    )
    missing = empty_state(
        "circle-help",
        "Product not found",
        "This product does not exist or is no longer for sale.",
        button_link("Back to the store", routes.STOREFRONT),
    )
    return page(
        rx.cond(ProductState.loading, loading_block(), rx.cond(ProductState.not_found, missing, body))
    )


def seller_public_page() -> rx.Component:
    s = SellerPageState
    missing = empty_state(
        "user-x",
        "Seller not found",
        "No seller goes by that name.",
        button_link("Back to the store", routes.STOREFRONT),
    )
    body = rx.vstack(
        rx.heading(s.seller_name, size="7", as_="h1"),
        rx.text("Products by this seller", color=rx.color("gray", 11)),
        rx.cond(
            s.products.length() > 0,
            product_grid(s.products),
            empty_state("package", "Nothing for sale yet", "This seller has not published anything yet."),
        ),
        rx.cond(s.next_cursor != "", rx.button("Show more", variant="soft", on_click=s.load_more)),
        spacing="4",
        width="100%",
    )
    return page(rx.cond(s.loading, loading_block(), rx.cond(s.not_found, missing, body)))
