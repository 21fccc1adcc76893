"""What buyers see of a product: cards, the product page, covers, descriptions, seller profiles."""

from __future__ import annotations

import base64
import functools

import nh3
from markdown_it import MarkdownIt
from pydantic import BaseModel
from sqlmodel import Session, col, select

from quantoxbay.models import Product, ProductFile, ProductStatus, Role, User
from quantoxbay.routes import API_COVERS
from quantoxbay.services import NotFound
from quantoxbay.services.money import format_money
from quantoxbay.services.pricing import current_price_cents, sale_is_running
from quantoxbay.storage import Storage, StorageError


class ProductFilePublic(BaseModel):
    """A file as buyers see it before buying: name and size, never a link."""

    id: int
    filename: str
    size_bytes: int


class ProductCard(BaseModel):
    """A product in a listing."""

    id: int
    title: str
    seller_name: str
    seller_handle: str | None
    price_cents: int
    currency: str
    price_label: str
    category: str
    cover_url: str | None
    # The price paid now (the sale price while a sale runs) and the list price struck through.
    effective_price_cents: int = 0
    regular_price_label: str = ""
    on_sale: bool = False
    pay_what_you_want: bool = False
    sales_count: int = 0


class ProductDetail(ProductCard):
    """A product page."""

    description: str
    status: str
    files: list[ProductFilePublic]
    tags: list[str]
    # The description rendered from markdown and sanitised: safe to insert as HTML.
    description_html: str = ""
    cover_page_url: str | None = None


class SellerProfile(BaseModel):
    """A seller's public page header."""

    id: int
    name: str
    handle: str


# --- presentation helpers --------------------------------------------------------

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)
_ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "s", "del", "code",
    "pre", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip


def render_description(markdown: str) -> str:
    """A seller's markdown as HTML that is safe in a buyer's page.

    Raw HTML in the markdown is escaped (markdown-it ``html=False``) and the output is
    then sanitised by nh3 (an allow-list of tags and attributes, http/https/mailto links
    only, ``rel="noopener noreferrer nofollow"``): two independent layers, so no script,
    event handler, iframe or ``javascript:`` URL from a seller ever runs.
    """
    html = _markdown.render(markdown or "")
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes={"a": {"href", "title"}, "th": {"align"}, "td": {"align"}, "code": {"class"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


@functools.lru_cache(maxsize=4096)
def _cover_data_url(storage: Storage, key: str) -> str | None:
    try:
        data = b"".join(storage.open_range(key))
    except (StorageError, ValueError):
        return None
    return "data:image/webp;base64," + base64.b64encode(data).decode("ascii")


def cover_url(
    storage: Storage | None, cover_key: str | None, variant: str = "card", *, public: bool = True
) -> str | None:
    """A URL the browser can show a cover with, or None.

    A published product's cover (``public``) is served by ``GET /api/covers/...``: a stable
    URL, cached by browsers for a year since keys are unique per upload. A seller's own
    view of a draft gets S3's presigned URL or, on local disk, the small WebP as a data URL.
    """
    if not cover_key:
        return None
    if public:
        return f"{API_COVERS}/{cover_key.removeprefix('covers/')}/{variant}.webp"
    if storage is None:
        return None
    key = f"{cover_key}/{variant}.webp"
    try:
        url = storage.presigned_url(key, expires_in=3600)
    except (StorageError, ValueError):
        return None
    return url or _cover_data_url(storage, key)


def _price_label(cents: int, currency: str, pwyw: bool) -> str:
    if pwyw:
        return "Name your price" if cents == 0 else f"{format_money(cents, currency)}+"
    return format_money(cents, currency)


def _card(product: Product, seller: User, storage: Storage | None = None) -> ProductCard:
    assert product.id is not None
    on_sale = sale_is_running(product)
    price = current_price_cents(product)
    return ProductCard(
        id=product.id,
        title=product.title,
        seller_name=seller.display_name or seller.email.split("@")[0],
        seller_handle=seller.handle,
        price_cents=product.price_cents,
        currency=product.currency,
        price_label=_price_label(price, product.currency, product.pay_what_you_want),
        category=product.category,
        cover_url=cover_url(storage, product.cover_key, "card"),
        effective_price_cents=price,
        regular_price_label=format_money(product.price_cents, product.currency) if on_sale else "",
        on_sale=on_sale,
        pay_what_you_want=product.pay_what_you_want,
        sales_count=product.sales_count,
    )


def get_published_product(
    *, session: Session, product_id: int, storage: Storage | None = None
) -> ProductDetail:
    """A product page as buyers see it; unpublished or deleted ones are NotFound."""
    row = session.exec(
        select(Product, User)
        .join(User, col(User.id) == col(Product.seller_id))
        .where(Product.id == product_id, Product.status == ProductStatus.PUBLISHED.value)
    ).first()
    if row is None:
        raise NotFound("This product does not exist or is no longer for sale.")
    product, seller = row
    files = session.exec(
        select(ProductFile).where(ProductFile.product_id == product_id).order_by(col(ProductFile.id))
    ).all()
    card = _card(product, seller, storage)
    return ProductDetail(
        **card.model_dump(),
        description=product.description,
        description_html=render_description(product.description),
        cover_page_url=cover_url(storage, product.cover_key, "page"),
        status=product.status,
        files=[
            ProductFilePublic(id=f.id, filename=f.filename, size_bytes=f.size_bytes) for f in files if f.id
        ],
        tags=[t for t in product.tags.split(",") if t],
    )


def get_seller_profile(*, session: Session, handle: str) -> SellerProfile:
    """A seller's public profile by handle; NotFound for buyers, disabled or unknown accounts."""
    user = session.exec(select(User).where(User.handle == handle.strip().lower())).first()
    if (
        user is None
        or user.disabled
        or user.role not in (Role.SELLER.value, Role.ADMIN.value)
        or user.id is None
    ):
        raise NotFound("No seller goes by that name.")
    return SellerProfile(
        id=user.id, name=user.display_name or user.email.split("@")[0], handle=user.handle or ""
    )
