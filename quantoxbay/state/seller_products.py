"""Seller product management: the list, the new-product form and the edit page.

Every handler that touches data carries ``@requires(Role.SELLER, refuse=...)`` (state.guards): the
user is re-checked on the server before the body runs (so before any upload is read), and the
service checks that the product is theirs; nothing the browser says about who it is is trusted.
"""

from __future__ import annotations

import contextlib
from typing import Any, TypedDict

import reflex as rx

from quantoxbay import routes
from quantoxbay.models import Role
from quantoxbay.services import DomainError, catalog, receipts
from quantoxbay.services.accounts import UserPublic
from quantoxbay.services.money import SUPPORTED_CURRENCIES, parse_price
from quantoxbay.settings import get_settings
from quantoxbay.state.catalog import human_size
from quantoxbay.state.guards import requires, shows_errors
from quantoxbay.state.session import run_service

CURRENCIES = sorted(SUPPORTED_CURRENCIES)
NO_CATEGORY = "none"  # a Select cannot hold "", so this stands for "no category"


# What a handler answers a refused user (or, under shows_errors, a DomainError) with: the page's
# fields cleared and the message shown where that page shows its own errors.


def _refuse_list(state: SellerProductsState, exc: DomainError) -> Any:
    state.products, state.loaded = [], False
    return rx.toast.error(str(exc))


def _refuse_new(state: ProductFormState, exc: DomainError) -> Any:
    state._reset_form()
    return rx.toast.error(str(exc))


def _refuse_edit(state: ProductFormState, _exc: DomainError) -> Any:
    state._reset_form()
    state.loaded = False
    return [rx.redirect(routes.SELLER_PRODUCTS), rx.toast.error("That product is not one of yours.")]


def _form_error(state: ProductFormState, exc: DomainError) -> None:
    """The form's own error line (the notice cleared, as each handler does first)."""
    state.error, state.notice = str(exc), ""


def _form_error_clearing(upload_id: str, prefix: str = "") -> Any:
    """For an upload handler: the error line, and the browser's chosen files cleared."""

    def answer(state: ProductFormState, exc: DomainError) -> Any:
        state.error, state.notice, state.busy = f"{prefix}{exc}", "", False
        return [rx.clear_selected_files(upload_id)]

    return answer


class FileRow(TypedDict):
    """A file on the edit page: catalog.SellerFile plus what the page shows of it."""

    id: int
    filename: str
    size_bytes: int
    version: int
    content_type: str
    size_label: str  # "1.2 MB"
    id_str: str  # a Select's value is a string


class SellerProductsState(rx.State):
    """`/seller/products`: the seller's products with their status."""

    products: rx.Field[list[catalog.SellerProductRow]] = rx.field(default_factory=list)
    loaded: rx.Field[bool] = rx.field(False)

    @rx.event
    @requires(Role.SELLER, refuse=_refuse_list)
    async def load(self, user: UserPublic):
        self.products = await run_service(catalog.list_seller_products, seller_id=user.id)
        self.loaded = True
        return None


class ProductFormState(rx.State):
    """The new-product form and the edit page (product_id 0 = not created yet)."""

    editing_id: rx.Field[int] = rx.field(0)
    title: rx.Field[str] = rx.field("")
    description: rx.Field[str] = rx.field("")
    price: rx.Field[str] = rx.field("0")
    currency: rx.Field[str] = rx.field("usd")
    category: rx.Field[str] = rx.field(NO_CATEGORY)
    tags: rx.Field[str] = rx.field("")
    pay_what_you_want: rx.Field[bool] = rx.field(False)
    status: rx.Field[str] = rx.field("")
    # Why an admin took it down ("" unless status is "removed"): shown on the page, Publish is off.
    removed_notice: rx.Field[str] = rx.field("")
    files: rx.Field[list[FileRow]] = rx.field(default_factory=list)
    cover_url: rx.Field[str] = rx.field("")
    replace_file_id: rx.Field[str] = rx.field("")

    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")
    busy: rx.Field[bool] = rx.field(False)
    upload_percent: rx.Field[int] = rx.field(0)
    upload_started: rx.Field[bool] = rx.field(False)
    loaded: rx.Field[bool] = rx.field(False)

    @rx.var
    def is_published(self) -> bool:
        return self.status == "published"

    @rx.var
    def product_url(self) -> str:
        return routes.product_path(self.editing_id) if self.editing_id else ""

    def _reset_form(self) -> None:
        self.editing_id, self.title, self.description, self.price = 0, "", "", "0"
        self.currency, self.category, self.tags, self.pay_what_you_want = "usd", NO_CATEGORY, "", False
        self.status, self.files, self.cover_url, self.replace_file_id = "", [], "", ""
        self.removed_notice = ""
        self.error, self.notice, self.busy, self.upload_percent, self.upload_started = "", "", False, 0, False

    def _show(self, view: catalog.SellerProduct) -> None:
        self.editing_id, self.title, self.description = view.id, view.title, view.description
        self.price = f"{view.price_cents / 100:.2f}"
        self.currency, self.category = view.currency, view.category or NO_CATEGORY
        self.tags, self.pay_what_you_want, self.status = (
            ", ".join(view.tags),
            view.pay_what_you_want,
            view.status,
        )
        self.removed_notice = view.removed_notice
        self.cover_url = view.cover_url or ""
        self.files = [
            FileRow(
                id=f.id,
                filename=f.filename,
                size_bytes=f.size_bytes,
                version=f.version,
                content_type=f.content_type,
                size_label=human_size(f.size_bytes),
                id_str=str(f.id),
            )
            for f in view.files
        ]

    async def _refresh(self, seller_id: int) -> None:
        view = await run_service(catalog.get_seller_product, product_id=self.editing_id, seller_id=seller_id)
        self._show(view)

    # --- loading ---------------------------------------------------------------

    @rx.event
    @requires(Role.SELLER, refuse=_refuse_new)
    async def load_new(self):
        self._reset_form()
        self.loaded = True
        return None

    @rx.event
    @requires(Role.SELLER, refuse=_refuse_edit)
    async def load_edit(self, user: UserPublic):
        self._reset_form()
        self.loaded = False
        try:
            self.editing_id = int(self.router.page.params.get("product_id", ""))
            await self._refresh(user.id)
        except (DomainError, ValueError):
            self._reset_form()
            return [rx.redirect(routes.SELLER_PRODUCTS), rx.toast.error("That product is not one of yours.")]
        self.loaded = True
        return None

    # --- form fields -------------------------------------------------------------

    @rx.event
    def set_title(self, value: str) -> None:
        self.title = value

    @rx.event
    def set_description(self, value: str) -> None:
        self.description = value

    @rx.event
    def set_price(self, value: str) -> None:
        self.price = value

    @rx.event
    def set_currency(self, value: str) -> None:
        self.currency = value

    @rx.event
    def set_category(self, value: str) -> None:
        self.category = value

    @rx.event
    def set_tags(self, value: str) -> None:
        self.tags = value

    @rx.event
    def set_pay_what_you_want(self, value: bool) -> None:
        self.pay_what_you_want = bool(value)

    @rx.event
    def set_replace_file_id(self, value: str) -> None:
        self.replace_file_id = value

    @rx.event
    def on_upload_progress(self, progress: dict) -> None:
        self.upload_started = True
        with contextlib.suppress(TypeError, ValueError):
            self.upload_percent = max(0, min(100, round(float(progress.get("progress", 0)) * 100)))

    # --- saving ------------------------------------------------------------------

    def _fields(self) -> dict:
        return {
            "title": self.title,
            "description": self.description,
            "price_cents": parse_price(self.price or "0"),
            "currency": self.currency,
            "category": "" if self.category == NO_CATEGORY else self.category,
            "tags": self.tags,
            "pay_what_you_want": self.pay_what_you_want,
        }

    @rx.event
    @requires(Role.SELLER, refuse=_form_error)
    async def save_details(self, user: UserPublic) -> None:
        """Create the draft (new form) or save the changes (edit page)."""
        self.error, self.notice = "", ""
        await self._save_details(user)

    async def _save_details(self, user: UserPublic) -> None:
        try:
            if self.editing_id:
                await run_service(
                    catalog.update_product, product_id=self.editing_id, seller_id=user.id, **self._fields()
                )
                self.notice = "Changes saved."
            else:
                product = await run_service(catalog.create_product, seller_id=user.id, **self._fields())
                self.editing_id = product.id or 0
            await self._refresh(user.id)
        except DomainError as exc:
            self.error = str(exc)

    async def _store_files(
        self, user: UserPublic, files: list[rx.UploadFile], replace_id: int | None = None
    ) -> list[str]:
        """Stream each upload into storage; returns a message per refused file."""
        problems: list[str] = []
        limit = get_settings().max_upload_bytes
        for upload in files:
            # The relative path as the browser sent it, so folder tricks are refused, not hidden.
            name = upload.path.as_posix() if upload.path else (upload.filename or "")
            kwargs = {
                "product_id": self.editing_id,
                "seller_id": user.id,
                "filename": name,
                "stream": upload.file,
                "content_type": upload.content_type or "application/octet-stream",
                "max_bytes": limit,
            }
            try:
                if replace_id is not None:
                    await run_service(catalog.replace_product_file, file_id=replace_id, **kwargs)
                else:
                    await run_service(catalog.add_product_file, **kwargs)
            except catalog.FileTooLarge:
                problems.append(f"{name} is larger than the {human_size(limit)} limit.")
            except DomainError as exc:
                problems.append(str(exc))
            except catalog.StorageError:
                problems.append(f"{name} could not be stored. Try again in a moment.")
        await self._refresh(user.id)
        return problems

    async def _add_files(self, user: UserPublic, files: list[rx.UploadFile]) -> None:
        self.busy = True
        try:
            problems = await self._store_files(user, files)
        except DomainError as exc:
            problems = [str(exc)]
        self.busy = False
        if files:
            self.upload_percent = 100
        if problems:
            self.error = " ".join([self.error, *problems]).strip()

    async def _set_cover(self, user: UserPublic, files: list[rx.UploadFile]) -> None:
        if not files:
            return
        try:
            await run_service(
                catalog.set_cover_image,
                product_id=self.editing_id,
                seller_id=user.id,
                stream=files[0].file,
            )
            await self._refresh(user.id)
        except DomainError as exc:
            self.error = " ".join([self.error, f"Cover image: {exc}"]).strip()

    # "Publish" on the new form sends two uploads ("files" and "cover"). Reflex sends
    # uploads over HTTP beside the websocket, so their order is not fixed: whichever
    # arrives first saves the details, whichever arrives last publishes.
    _publish_parts: list[str] = []

    async def _publish_part(self, user: UserPublic, part: str, files: list[rx.UploadFile]):
        if not self._publish_parts or part in self._publish_parts:
            self._publish_parts = []
            self.error, self.notice = "", ""
            await self._save_details(user)
        self._publish_parts = [*self._publish_parts, part]
        if self.editing_id and not self.error:
            await (self._add_files(user, files) if part == "files" else self._set_cover(user, files))
        if len(self._publish_parts) < 2:
            return None
        self._publish_parts = []
        if self.error or not self.editing_id:
            return None
        return await self._publish(user)

    @rx.event
    @requires(Role.SELLER, refuse=_form_error_clearing("files"))
    async def publish_files(self, files: list[rx.UploadFile], user: UserPublic):
        """Upload handler of the new form's "Files" (one half of "Publish")."""
        events = await self._publish_part(user, "files", files)
        return [rx.clear_selected_files("files"), *(events or [])]

    @rx.event
    @requires(Role.SELLER, refuse=_form_error_clearing("cover"))
    async def publish_cover(self, files: list[rx.UploadFile], user: UserPublic):
        """Upload handler of the new form's "Cover image" (the other half of "Publish")."""
        events = await self._publish_part(user, "cover", files)
        return [rx.clear_selected_files("cover"), *(events or [])]

    @rx.event
    @requires(Role.SELLER, refuse=_form_error_clearing("files"))
    async def receive_files(self, files: list[rx.UploadFile], user: UserPublic):
        """Edit page: add files to the product."""
        self.error, self.notice = "", ""
        if self.editing_id:
            await self._add_files(user, files)
        return rx.clear_selected_files("files")

    @rx.event
    @requires(Role.SELLER, refuse=_form_error_clearing("cover", prefix="Cover image: "))
    async def receive_cover(self, files: list[rx.UploadFile], user: UserPublic):
        """Edit page: replace the cover image (the first image counts)."""
        self.error, self.notice = "", ""
        if self.editing_id:
            await self._set_cover(user, files)
        return rx.clear_selected_files("cover")

    @rx.event
    @requires(Role.SELLER, refuse=_form_error_clearing("replace"))
    async def replace_file(self, files: list[rx.UploadFile], user: UserPublic):
        """Upload a new version of the chosen file (buyers keep access and get the new version)."""
        self.error, self.notice = "", ""
        if not files or not self.replace_file_id:
            self.error = "Choose the file to replace and the new version."
            return None
        try:
            problems = await self._store_files(user, files[:1], replace_id=int(self.replace_file_id))
        except (DomainError, ValueError) as exc:
            problems = [str(exc)]
        if problems:
            self.error = " ".join(problems)
        else:
            self.notice = "File replaced. Buyers now get the new version."
        return rx.clear_selected_files("replace")

    @rx.event
    @requires(Role.SELLER, refuse=_form_error)
    async def notify_buyers(self, file_id: int, user: UserPublic):
        """E-mail every buyer with access that this file has a new version (once per version)."""
        self.error, self.notice = "", ""
        try:
            queued = await run_service(receipts.notify_file_update, seller_id=user.id, file_id=int(file_id))
        except (DomainError, ValueError) as exc:
            self.error = str(exc)
            return
        if queued:
            self.notice = (
                f"{queued} buyer{'s' if queued != 1 else ''} will get an e-mail about the new version."
            )
        else:
            self.notice = "Every buyer has already been told about this version."

    @rx.event
    @requires(Role.SELLER, refuse=_form_error)
    async def remove_file(self, file_id: int, user: UserPublic):
        self.error, self.notice = "", ""
        try:
            await run_service(
                catalog.remove_product_file,
                product_id=self.editing_id,
                seller_id=user.id,
                file_id=int(file_id),
            )
            await self._refresh(user.id)
        except (DomainError, ValueError) as exc:
            self.error = str(exc)

    # --- lifecycle ---------------------------------------------------------------

    @rx.event
    @requires(Role.SELLER, refuse=_form_error)
    async def publish(self, user: UserPublic):
        """ "Publish" on the edit page."""
        self.error, self.notice = "", ""
        return await self._publish(user)

    async def _publish(self, user: UserPublic):
        try:
            await run_service(catalog.publish_product, product_id=self.editing_id, seller_id=user.id)
            await self._refresh(user.id)
        except DomainError as exc:
            self.error = str(exc)
            return None
        self.notice = "Published. Buyers can find it in the store now."
        return [rx.toast.success("Your product is live.")]

    @rx.event
    @requires(Role.SELLER, refuse=_form_error)
    @shows_errors(_form_error)
    async def unpublish(self, user: UserPublic):
        self.error, self.notice = "", ""
        await run_service(catalog.unpublish_product, product_id=self.editing_id, seller_id=user.id)
        await self._refresh(user.id)
        self.notice = "Unpublished. Earlier buyers keep their downloads."
        return None

    @rx.event
    @requires(Role.SELLER, refuse=_form_error)
    @shows_errors(_form_error)
    async def delete(self, user: UserPublic):
        self.error, self.notice = "", ""
        await run_service(catalog.delete_product, product_id=self.editing_id, seller_id=user.id)
        self._reset_form()
        return [rx.redirect(routes.SELLER_PRODUCTS), rx.toast.success("Product deleted.")]

    @rx.event
    def start_upload(self) -> None:
        """Before an upload: show the progress bar from 0."""
        self.upload_percent, self.upload_started = 0, True

    @rx.event
    def clear_messages(self) -> None:
        self.error, self.notice = "", ""
