"""Seller product pages: `/seller/products`, `/seller/products/new`, `/seller/products/[product_id]/edit`."""

from __future__ import annotations

import reflex as rx

from quantoxbay import routes
from quantoxbay.components.layout import button_link, empty_state, loading_block, page
from quantoxbay.components.verify_notice import verify_email_notice
from quantoxbay.constants import CATEGORIES
from quantoxbay.settings import get_settings
from quantoxbay.state.seller_products import CURRENCIES, NO_CATEGORY, ProductFormState, SellerProductsState

F = ProductFormState


def seller_products_page() -> rx.Component:
    s = SellerProductsState
    table = rx.table.root(
        rx.table.header(
            rx.table.row(
                rx.table.column_header_cell("Product"),
                rx.table.column_header_cell("Status"),
                rx.table.column_header_cell("Price"),
                rx.table.column_header_cell("Sales"),
            )
        ),
        rx.table.body(
            rx.foreach(
                s.products,
                lambda p: rx.table.row(
                    rx.table.cell(rx.link(p["title"], href=p["edit_url"])),
                    rx.table.cell(
                        rx.badge(p["status"], color_scheme=rx.cond(p["status"] == "removed", "red", "gray")),
                        rx.cond(
                            p["removed_reason"] != "",
                            rx.text("Taken down by an admin: ", p["removed_reason"], size="1"),
                        ),
                    ),
                    rx.table.cell(p["price"]),
                    rx.table.cell(p["sales"]),
                ),
            )
        ),
        width="100%",
        variant="surface",
    )
    return page(
        verify_email_notice(),
        rx.hstack(
            rx.heading("Your products", size="7"),
            button_link("New product", routes.SELLER_PRODUCTS_NEW),
            justify="between",
            align="center",
            width="100%",
            padding_bottom="1em",
        ),
        rx.cond(
            s.loaded,
            rx.cond(
                s.products.length() > 0,
                table,
                empty_state(
                    "package-plus",
                    "No products yet",
                    "Create your first product to start selling.",
                    button_link("New product", routes.SELLER_PRODUCTS_NEW),
                ),
            ),
            loading_block(),
        ),
    )


def _field(label: str, control: rx.Component, hint: str = "") -> rx.Component:
    """A labelled control; the hint sits outside the <label> so the control's name is just ``label``."""
    return rx.vstack(
        rx.el.label(
            rx.text(label, size="2", weight="medium"),
            control,
            style={"display": "flex", "flex_direction": "column", "gap": "0.35em", "width": "100%"},
        ),
        *([rx.text(hint, size="1", color=rx.color("gray", 10))] if hint else []),
        spacing="1",
        width="100%",
    )


def _drop_zone(label: str, upload_id: str, hint: str, **props: object) -> rx.Component:
    """A drop zone wrapped in a <label>, so its (hidden) file input is named by ``label``."""
    return rx.el.label(
        rx.text(label, size="2", weight="medium"),
        rx.upload(
            rx.vstack(
                rx.icon("cloud-upload", size=24, color=rx.color("accent", 9)),
                rx.text(hint, size="2", color=rx.color("gray", 11)),
                rx.foreach(
                    rx.selected_files(upload_id), lambda name: rx.text(name, size="1", weight="medium")
                ),
                align="center",
                spacing="1",
            ),
            id=upload_id,
            no_click=True,  # the <label> opens the file dialog
            max_size=get_settings().max_upload_bytes,
            border=f"1px dashed {rx.color('gray', 7)}",
            border_radius="var(--radius-3)",
            padding="1.25em",
            width="100%",
            cursor="pointer",
            **props,
        ),
        style={"display": "flex", "flex_direction": "column", "gap": "0.35em", "width": "100%"},
    )


def _details_fields() -> list[rx.Component]:
    return [
        _field("Title", rx.input(value=F.title, on_change=F.set_title, max_length=200, size="3")),
        _field(
            "Description",
            rx.text_area(value=F.description, on_change=F.set_description, rows="8", size="3"),
            "Markdown: **bold**, *italic*, lists, links. HTML is shown as text.",
        ),
        rx.flex(
            _field(
                "Price",
                rx.input(value=F.price, on_change=F.set_price, input_mode="decimal", size="3"),
                "0 for a free product.",
            ),
            _field(
                "Currency",
                rx.select(CURRENCIES, value=F.currency, on_change=F.set_currency, size="3"),
            ),
            _field(
                "Category",
                rx.select.root(
                    rx.select.trigger(),
                    rx.select.content(
                        rx.select.item("No category", value=NO_CATEGORY),
                        *[rx.select.item(label, value=value) for value, label in CATEGORIES.items()],
                    ),
                    value=F.category,
                    on_change=F.set_category,
                    size="3",
                ),
            ),
            gap="3",
            width="100%",
            direction=rx.breakpoints(initial="column", sm="row"),
        ),
        rx.vstack(
            rx.checkbox("Pay what you want", checked=F.pay_what_you_want, on_change=F.set_pay_what_you_want),
            rx.text("Buyers may pay more; the price is the minimum.", size="1", color=rx.color("gray", 10)),
            spacing="1",
        ),
        _field("Tags", rx.input(value=F.tags, on_change=F.set_tags, size="3"), "Comma separated, up to 10."),
    ]


def _messages() -> rx.Component:
    return rx.fragment(
        rx.cond(
            F.removed_notice != "",
            rx.callout(
                F.removed_notice,
                icon="ban",
                color_scheme="red",
                width="100%",
                data_testid="removed-notice",
            ),
        ),
        rx.cond(
            F.error != "",
            rx.callout(F.error, icon="triangle-alert", color_scheme="red", role="alert", width="100%"),
        ),
        rx.cond(
            F.notice != "",
            rx.callout(F.notice, icon="circle-check", color_scheme="green", role="status", width="100%"),
        ),
    )


def _progress() -> rx.Component:
    return rx.cond(
        F.upload_started,
        rx.vstack(
            rx.text("Upload progress: ", F.upload_percent, "%", size="2"),
            rx.progress(value=F.upload_percent, max=100, aria_label="Upload progress", width="100%"),
            width="100%",
            spacing="1",
        ),
    )


def new_product_page() -> rx.Component:
    publish_chain = [
        F.start_upload,
        # mypy reads reflex's rx.event as returning its namespace, not the handler
        F.publish_files(rx.upload_files(upload_id="files", on_upload_progress=F.on_upload_progress)),  # type: ignore[arg-type]
        F.publish_cover(rx.upload_files(upload_id="cover")),
    ]
    form = rx.vstack(
        *_details_fields(),
        _drop_zone("Files", "files", "Drop the files buyers get, or click to choose."),
        _drop_zone(
            "Cover image",
            "cover",
            "JPEG, PNG, WebP or GIF, up to 10 MB.",
            multiple=False,
            accept={
                "image/png": [".png"],
                "image/jpeg": [".jpg", ".jpeg"],
                "image/webp": [".webp"],
                "image/gif": [".gif"],
            },
        ),
        _progress(),
        _messages(),
        rx.hstack(
            rx.button("Publish", size="3", on_click=publish_chain, loading=F.busy),
            rx.cond(
                F.product_url != "", button_link("View product", F.product_url, variant="soft", size="3")
            ),
            spacing="3",
        ),
        spacing="4",
        width="100%",
    )
    return page(
        verify_email_notice(),
        rx.heading("New product", size="7", padding_bottom="1em"),
        rx.cond(F.loaded, form, loading_block()),
        max_width="48em",
    )


def edit_product_page() -> rx.Component:
    files = rx.vstack(
        rx.heading("Files", size="4"),
        rx.foreach(
            F.files,
            lambda f: rx.hstack(
                rx.icon("file", size=16),
                rx.text(f["filename"], size="2", weight="medium"),
                rx.text(f["size_label"], size="2", color=rx.color("gray", 10)),
                rx.badge("v", f["version"], variant="soft"),
                rx.spacer(),
                rx.cond(
                    f["version"].to(int) > 1,
                    rx.button(
                        "Notify buyers",
                        size="1",
                        variant="soft",
                        on_click=F.notify_buyers(f["id"]),
                        aria_label="Notify buyers of " + f["filename"].to(str),
                    ),
                ),
                rx.button(
                    "Remove",
                    size="1",
                    variant="ghost",
                    color_scheme="red",
                    on_click=F.remove_file(f["id"]),
                    aria_label="Remove " + f["filename"].to(str),
                ),
                align="center",
                width="100%",
            ),
        ),
        _drop_zone("Add files", "files", "Drop more files here, or click to choose."),
        rx.button(
            "Upload files",
            variant="soft",
            on_click=[
                F.start_upload,
                F.receive_files(rx.upload_files(upload_id="files", on_upload_progress=F.on_upload_progress)),  # type: ignore[arg-type]
            ],
        ),
        rx.heading("Replace a file", size="3", padding_top="0.5em"),
        rx.text(
            "Buyers keep access and get the new version.",
            size="2",
            color=rx.color("gray", 10),
        ),
        rx.select.root(
            rx.select.trigger(placeholder="File to replace", aria_label="File to replace"),
            rx.select.content(
                rx.foreach(F.files, lambda f: rx.select.item(f["filename"], value=f["id_str"]))
            ),
            value=F.replace_file_id,
            on_change=F.set_replace_file_id,
        ),
        _drop_zone(
            "New version", "replace", "Drop the new version here, or click to choose.", multiple=False
        ),
        rx.button(
            "Replace file",
            variant="soft",
            on_click=F.replace_file(rx.upload_files(upload_id="replace")),
        ),
        _progress(),
        spacing="3",
        width="100%",
    )
    cover = rx.vstack(
        rx.heading("Cover image", size="4"),
        rx.cond(
            F.cover_url != "",
            rx.image(src=F.cover_url, alt="Current cover", width="16em", border_radius="var(--radius-3)"),
        ),
        _drop_zone("Cover image", "cover", "JPEG, PNG, WebP or GIF, up to 10 MB.", multiple=False),
        rx.button(
            "Upload cover",
            variant="soft",
            on_click=[F.clear_messages, F.receive_cover(rx.upload_files(upload_id="cover"))],
        ),
        spacing="3",
        width="100%",
    )
    actions = rx.hstack(
        rx.button("Save changes", size="3", on_click=F.save_details, loading=F.busy),
        rx.cond(
            F.is_published,
            rx.button("Unpublish", size="3", variant="soft", on_click=F.unpublish),
            rx.button(
                "Publish", size="3", variant="soft", on_click=F.publish, disabled=F.removed_notice != ""
            ),
        ),
        rx.cond(F.is_published, button_link("View product", F.product_url, variant="ghost", size="3")),
        rx.spacer(),
        rx.alert_dialog.root(
            rx.alert_dialog.trigger(rx.button("Delete", size="3", color_scheme="red", variant="soft")),
            rx.alert_dialog.content(
                rx.alert_dialog.title("Delete this product?"),
                rx.alert_dialog.description(
                    "It disappears from the store. Buyers who already own it keep their downloads."
                ),
                rx.hstack(
                    rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                    rx.alert_dialog.action(
                        rx.button("Delete product", color_scheme="red", on_click=F.delete)
                    ),
                    justify="end",
                    spacing="3",
                ),
            ),
        ),
        width="100%",
        wrap="wrap",
        spacing="3",
    )
    form = rx.vstack(
        rx.hstack(rx.heading(F.title, size="7"), rx.badge(F.status, size="2"), align="center", spacing="3"),
        _messages(),
        *_details_fields(),
        actions,
        rx.separator(width="100%"),
        files,
        rx.separator(width="100%"),
        cover,
        spacing="4",
        width="100%",
    )
    return page(verify_email_notice(), rx.cond(F.loaded, form, loading_block()), max_width="48em")
