"""Storefront, product page and seller page states: thin, they call the catalog service."""

from __future__ import annotations

from typing import TypedDict

import reflex as rx

from quantoxbay.components.countdown import COUNTDOWN_SCRIPT
from quantoxbay.services import DomainError, NotFound, catalog, promotions
from quantoxbay.services.money import parse_price
from quantoxbay.state.session import run_service

PAGE_SIZE = 24
ALL_CATEGORIES = "all"  # a Select cannot hold "", so this stands for "every category"


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


class FileRow(TypedDict):
    """A file on the product page: its name and size, never a link."""

    filename: str
    size_label: str  # "1.2 MB"


# Listings hold the catalog service's own ProductCard models (Reflex serialises pydantic models
# and types each field access): a second, dict-shaped copy of their fields would only drift.


class StorefrontState(rx.State):
    """`/`: search, filters, sort and keyset pages over the published products."""

    products: rx.Field[list[catalog.ProductCard]] = rx.field(default_factory=list)
    query: rx.Field[str] = rx.field("")
    category: rx.Field[str] = rx.field(ALL_CATEGORIES)
    sort: rx.Field[str] = rx.field("newest")
    min_price: rx.Field[str] = rx.field("")
    max_price: rx.Field[str] = rx.field("")
    error: rx.Field[str] = rx.field("")
    loading: rx.Field[bool] = rx.field(True)
    next_cursor: rx.Field[str] = rx.field("")
    # Cursors of the pages before this one, so "Previous" needs no OFFSET either.
    previous_cursors: rx.Field[list[str]] = rx.field(default_factory=list)
    cursor: rx.Field[str] = rx.field("")

    @rx.var
    def page_number(self) -> int:
        return len(self.previous_cursors) + 1

    @rx.var
    def has_filters(self) -> bool:
        return bool(self.query or self.min_price or self.max_price or self.category != ALL_CATEGORIES)

    async def _fetch(self) -> None:
        self.error = ""
        try:
            low = parse_price(self.min_price) if self.min_price.strip() else None
            high = parse_price(self.max_price) if self.max_price.strip() else None
            result = await run_service(
                catalog.search_products,
                query=self.query,
                category="" if self.category == ALL_CATEGORIES else self.category,
                min_price_cents=low,
                max_price_cents=high,
                sort=self.sort,
                cursor=self.cursor or None,
                limit=PAGE_SIZE,
            )
        except DomainError as exc:
            self.error, self.products, self.next_cursor, self.loading = str(exc), [], "", False
            return
        self.products = list(result.items)
        self.next_cursor = result.next_cursor or ""
        self.loading = False

    async def _first_page(self) -> None:
        self.cursor, self.previous_cursors = "", []
        await self._fetch()

    @rx.event
    async def load(self) -> None:
        params = self.router.url.query_parameters
        self.query = (params.get("q") or "")[:200]
        category = params.get("category") or ALL_CATEGORIES
        self.category = category if category in catalog.CATEGORIES else ALL_CATEGORIES
        sort = params.get("sort") or "newest"
        self.sort = sort if sort in catalog.SORT_ORDERS else "newest"
        await self._first_page()

    @rx.event
    async def set_query(self, value: str) -> None:
        self.query = value[:200]
        await self._first_page()

    @rx.event
    async def set_category(self, value: str) -> None:
        self.category = value if value in catalog.CATEGORIES else ALL_CATEGORIES
        await self._first_page()

    @rx.event
    async def set_sort(self, value: str) -> None:
        self.sort = value if value in catalog.SORT_ORDERS else "newest"
        await self._first_page()

    @rx.event
    def set_min_price(self, value: str) -> None:
        self.min_price = value[:12]

    @rx.event
    def set_max_price(self, value: str) -> None:
        self.max_price = value[:12]

    @rx.event
    async def apply_prices(self) -> None:
        await self._first_page()

    @rx.event
    async def clear_filters(self) -> None:
        self.query, self.category, self.min_price, self.max_price = "", ALL_CATEGORIES, "", ""
        await self._first_page()

    @rx.event
    async def next_page(self) -> None:
        if not self.next_cursor:
            return
        self.previous_cursors = [*self.previous_cursors, self.cursor]
        self.cursor = self.next_cursor
        await self._fetch()

    @rx.event
    async def previous_page(self) -> None:
        if not self.previous_cursors:
            return
        self.cursor = self.previous_cursors[-1]
        self.previous_cursors = self.previous_cursors[:-1]
        await self._fetch()


class ProductState(rx.State):
    """`/products/[product_id]`: a published product, or "not found" for anything else."""

    product: rx.Field[catalog.ProductDetail | None] = rx.field(None)
    files: rx.Field[list[FileRow]] = rx.field(default_factory=list)
    not_found: rx.Field[bool] = rx.field(False)
    loading: rx.Field[bool] = rx.field(True)
    # the running sale's end (epoch ms) for the countdown; 0: none
    sale_ends_at_ms: rx.Field[int] = rx.field(0)

    @rx.event
    async def load(self):
        self.loading, self.sale_ends_at_ms = True, 0
        raw = self.router.page.params.get("product_id", "")
        try:
            detail = await run_service(catalog.get_published_product, product_id=int(raw))
        except (NotFound, ValueError, TypeError):
            self.product, self.files, self.not_found, self.loading = None, [], True, False
            return None
        self.files = [FileRow(filename=f.filename, size_label=human_size(f.size_bytes)) for f in detail.files]
        self.product = detail
        self.not_found = False
        self.loading = False
        deadline = await run_service(promotions.sale_deadline, product_id=int(raw))
        if deadline is not None and detail.on_sale:
            self.sale_ends_at_ms = int(deadline.timestamp() * 1000)
            return rx.call_script(COUNTDOWN_SCRIPT)
        return None


class SellerPageState(rx.State):
    """`/sellers/[handle]`: a seller's published products."""

    seller_name: rx.Field[str] = rx.field("")
    products: rx.Field[list[catalog.ProductCard]] = rx.field(default_factory=list)
    next_cursor: rx.Field[str] = rx.field("")
    not_found: rx.Field[bool] = rx.field(False)
    loading: rx.Field[bool] = rx.field(True)
    _seller_id: int = 0

    @rx.event
    async def load(self) -> None:
        self.loading, self.products, self.next_cursor = True, [], ""
        handle = str(self.router.page.params.get("handle", ""))
        try:
            profile = await run_service(catalog.get_seller_profile, handle=handle)
        except NotFound:
            self.not_found, self.loading, self.seller_name = True, False, ""
            return
        self.not_found, self.seller_name, self._seller_id = False, profile.name, profile.id
        await self._fetch(None)

    async def _fetch(self, cursor: str | None) -> None:
        page = await run_service(
            catalog.search_products,
            seller_id=self._seller_id,
            cursor=cursor,
            limit=PAGE_SIZE,
        )
        self.products = [*self.products, *page.items]
        self.next_cursor = page.next_cursor or ""
        self.loading = False

    @rx.event
    async def load_more(self) -> None:
        if self.next_cursor and self._seller_id:
            await self._fetch(self.next_cursor)
