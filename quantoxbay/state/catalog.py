"""Storefront and product page states."""

from __future__ import annotations

import reflex as rx

from quantoxbay.services import NotFound, catalog
from quantoxbay.state.session import run_service

PAGE_SIZE = 24


class StorefrontState(rx.State):
    products: list[dict] = []
    total: int = 0
    page: int = 1
    loading: bool = True

    @rx.var
    def page_count(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))

    @rx.event
    async def load(self) -> None:
        try:
            self.page = max(1, int(self.router.url.query_parameters.get("page", "1")))
        except ValueError:
            self.page = 1
        cards = await run_service(catalog.list_published, limit=PAGE_SIZE, offset=(self.page - 1) * PAGE_SIZE)
        self.total = await run_service(catalog.count_published)
        self.products = [c.model_dump() for c in cards]
        self.loading = False


class ProductState(rx.State):
    product: dict = {}
    files: list[dict] = []
    not_found: bool = False
    loading: bool = True

    @rx.event
    async def load(self) -> None:
        self.loading = True
        raw = self.router.url.query_parameters.get("product_id") or str(self.product_id)  # type: ignore[attr-defined]
        try:
            detail = await run_service(catalog.get_published_product, product_id=int(raw))
        except (NotFound, ValueError):
            self.product, self.files, self.not_found, self.loading = {}, [], True, False
            return
        data = detail.model_dump()
        self.files = [{**f, "size_label": _human_size(f["size_bytes"])} for f in data.pop("files")]
        self.product = data
        self.not_found = False
        self.loading = False


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover
