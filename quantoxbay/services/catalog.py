"""Catalog: sellers create, edit, publish and delete products with files; buyers find and open them.

Listings use keyset ("seek") pagination: a page is one index range read from the last
row the buyer saw, so page 400 costs what page 1 costs. Search uses the database's own
full-text index (SQLite FTS5 table ``product_fts``, PostgreSQL ``product.search_vector``,
both created by the migration 7c3e1a9b2d40; d4catalogspeed gave the FTS5 table its prefix
index for search-as-you-type).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import io
import json
import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Literal

import nh3
from markdown_it import MarkdownIt
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, and_, exists, func, literal_column, table, text, tuple_
from sqlmodel import Session, col, select

from quantoxbay.constants import CATEGORIES as CATEGORIES
from quantoxbay.constants import SORT_ORDERS as SORT_ORDERS
from quantoxbay.models import OrderItem, Product, ProductFile, ProductStatus, User, utcnow
from quantoxbay.routes import API_COVERS
from quantoxbay.services import DomainError, NotFound, PermissionDenied
from quantoxbay.services.money import MAX_PRICE_CENTS, format_money, validate_currency
from quantoxbay.services.pricing import aware, current_price_cents, sale_is_running
from quantoxbay.services.text import multi_line, one_line
from quantoxbay.services.uploads import SniffedStream, check_upload_name, make_cover_images
from quantoxbay.storage import FileTooLarge as FileTooLarge  # raised by the upload functions, for states
from quantoxbay.storage import Storage, StorageError

MAX_TITLE = 200
MAX_DESCRIPTION = 20_000
MAX_TAGS = 10
MAX_PAGE_SIZE = 100
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ ()-]+")
_TAG_RE = re.compile(r"[^\w -]+")
_SEARCH_TOKEN = re.compile(r"\w+")

SortOrder = Literal["newest", "price_asc", "price_desc", "best_selling"]


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


class ProductPage(BaseModel):
    """One page of a listing, and the cursor of the next page (None on the last)."""

    items: list[ProductCard]
    next_cursor: str | None


class SellerFile(BaseModel):
    """A product file as its seller sees it."""

    id: int
    filename: str
    size_bytes: int
    version: int
    content_type: str


class SellerProduct(BaseModel):
    """A product as its seller edits it."""

    id: int
    title: str
    description: str
    price_cents: int
    currency: str
    pay_what_you_want: bool
    category: str
    tags: list[str]
    status: str
    sales_count: int
    price_label: str
    cover_url: str | None
    files: list[SellerFile]
    created_at: datetime


class SellerProfile(BaseModel):
    """A seller's public page header."""

    id: int
    name: str
    handle: str


# --- validation -----------------------------------------------------------------


def safe_filename(name: str) -> str:
    """The last path part of a client-supplied name, reduced to harmless characters."""
    name = unicodedata.normalize("NFKC", name).replace("\\", "/").split("/")[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    if not name or set(name) <= {"_"}:
        raise DomainError("That file name is not allowed. Rename the file and try again.")
    return name[:200]


def _validate_fields(title: str, description: str, price_cents: int, currency: str) -> tuple[str, str, str]:
    title = one_line(title.strip(), "The title")
    multi_line(description, "The description")
    if not title:
        raise DomainError("Give the product a title.")
    if len(title) > MAX_TITLE:
        raise DomainError(f"Titles are at most {MAX_TITLE} characters.")
    if len(description) > MAX_DESCRIPTION:
        raise DomainError(f"Descriptions are at most {MAX_DESCRIPTION:,} characters.")
    if isinstance(price_cents, bool) or not isinstance(price_cents, int):
        raise DomainError("The price must be a whole number of cents.")
    if price_cents < 0 or price_cents > MAX_PRICE_CENTS:
        raise DomainError("The price must be between 0 and 100,000.00.")
    # Stripe's minimum charge is 0.50 in most currencies: anything between free and that cannot be paid.
    if 0 < price_cents < 50:
        raise DomainError("Paid products cost at least 0.50; use 0 for a free product.")
    return title, description, validate_currency(currency)


def _clean_category(category: str) -> str:
    value = category.strip().lower()
    if value and value not in CATEGORIES:
        raise DomainError(f"Unknown category {category!r}; choose one of {', '.join(CATEGORIES)}.")
    return value


def _clean_tags(tags: list[str] | str | None) -> str:
    if isinstance(tags, str):
        tags = tags.split(",")
    for tag in tags or []:
        one_line(tag.strip(), "A tag")
    cleaned = sorted({_TAG_RE.sub("", t).strip().lower()[:40] for t in tags or []} - {""})
    if len(cleaned) > MAX_TAGS:
        raise DomainError(f"Use at most {MAX_TAGS} tags.")
    return ",".join(cleaned)


# --- seller side ----------------------------------------------------------------


def create_product(
    *,
    session: Session,
    seller_id: int,
    title: str,
    description: str = "",
    price_cents: int,
    currency: str = "usd",
    category: str = "",
    tags: list[str] | str | None = None,
    pay_what_you_want: bool = False,
) -> Product:
    """Create a draft product for a seller."""
    seller = session.get(User, seller_id)
    if seller is None or seller.role not in ("seller", "admin") or seller.disabled:
        raise PermissionDenied("Only sellers can create products.")
    title, description, currency = _validate_fields(title, description, price_cents, currency)
    product = Product(
        seller_id=seller_id,
        title=title,
        description=description,
        price_cents=price_cents,
        currency=currency,
        category=_clean_category(category),
        tags=_clean_tags(tags),
        pay_what_you_want=bool(pay_what_you_want),
    )
    session.add(product)
    session.flush()
    return product


def update_product(
    *,
    session: Session,
    product_id: int,
    seller_id: int,
    title: str,
    description: str = "",
    price_cents: int,
    currency: str = "usd",
    category: str = "",
    tags: list[str] | str | None = None,
    pay_what_you_want: bool = False,
) -> Product:
    """Change a product's details. A published product stays published."""
    product = _owned_product(session, product_id, seller_id)
    title, description, currency = _validate_fields(title, description, price_cents, currency)
    product.title, product.description = title, description
    product.price_cents, product.currency = price_cents, currency
    product.category, product.tags = _clean_category(category), _clean_tags(tags)
    product.pay_what_you_want = bool(pay_what_you_want)
    product.updated_at = utcnow()
    session.add(product)
    session.flush()
    return product


class _HashingReader:
    """Wraps a stream, hashing what passes through (one pass, constant memory)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.sha256.update(chunk)
        return chunk


def _store_upload(
    storage: Storage, product_id: int, filename: str, stream: BinaryIO, content_type: str, max_bytes: int
) -> tuple[str, str, int, str]:
    """Check and stream one upload into storage: (name, key, size, sha256). Stores nothing on refusal."""
    name = check_upload_name(filename)
    sniffed = SniffedStream(stream, name)
    key = f"products/{product_id}/{uuid.uuid4().hex}/{name}"
    reader = _HashingReader(sniffed)  # type: ignore[arg-type]
    # FileTooLarge propagates: the storage has kept nothing.
    size = storage.put(key, reader, content_type=content_type, max_bytes=max_bytes)  # type: ignore[arg-type]
    if size == 0:
        storage.delete(key)
        raise DomainError(f"{name} is empty. Upload a file with content.")
    return name, key, size, reader.sha256.hexdigest()


def add_product_file(
    *,
    session: Session,
    storage: Storage,
    product_id: int,
    seller_id: int,
    filename: str,
    stream: BinaryIO,
    content_type: str = "application/octet-stream",
    max_bytes: int,
) -> ProductFile:
    """Stream a file into storage and attach it to the seller's product.

    Raises:
        DomainError: Empty file, blocked type (by extension or by content), path tricks in the name.
        FileTooLarge: More than ``max_bytes``. In every case nothing is stored.
    """
    product = _owned_product(session, product_id, seller_id)
    assert product.id is not None
    name, key, size, digest = _store_upload(storage, product.id, filename, stream, content_type, max_bytes)
    record = ProductFile(
        product_id=product.id,
        filename=name,
        storage_key=key,
        size_bytes=size,
        content_type=(content_type or "application/octet-stream")[:120],
        sha256=digest,
    )
    session.add(record)
    product.updated_at = utcnow()
    session.add(product)
    session.flush()
    return record


def replace_product_file(
    *,
    session: Session,
    storage: Storage,
    product_id: int,
    seller_id: int,
    file_id: int,
    filename: str,
    stream: BinaryIO,
    content_type: str = "application/octet-stream",
    max_bytes: int,
) -> ProductFile:
    """Upload a new version of a file. The row stays (buyers keep access and get the new version).

    The old object is deleted once the new one is stored and the row points at it.
    """
    product = _owned_product(session, product_id, seller_id)
    record = session.get(ProductFile, file_id)
    if record is None or record.product_id != product.id:
        raise NotFound("That file is not part of this product.")
    name, key, size, digest = _store_upload(storage, product_id, filename, stream, content_type, max_bytes)
    old_key = record.storage_key
    record.filename, record.storage_key, record.size_bytes, record.sha256 = name, key, size, digest
    record.content_type = (content_type or "application/octet-stream")[:120]
    record.version += 1
    record.updated_at = utcnow()
    session.add(record)
    session.flush()
    # An orphaned old object would be harmless; a failed replace is not: never raise here.
    with contextlib.suppress(StorageError):
        storage.delete(old_key)
    return record


def remove_product_file(
    *, session: Session, storage: Storage, product_id: int, seller_id: int, file_id: int
) -> None:
    """Remove a file from a product; a published product keeps at least one file."""
    product = _owned_product(session, product_id, seller_id)
    record = session.get(ProductFile, file_id)
    if record is None or record.product_id != product.id:
        raise NotFound("That file is not part of this product.")
    count = session.exec(
        select(func.count()).select_from(ProductFile).where(ProductFile.product_id == product_id)
    ).one()
    if product.status == ProductStatus.PUBLISHED.value and count <= 1:
        raise DomainError("A published product needs at least one file. Unpublish it first.")
    if _has_orders(session, product_id):
        raise DomainError("Buyers own this file. Replace it with a new version instead of removing it.")
    key = record.storage_key
    session.delete(record)
    session.flush()
    with contextlib.suppress(StorageError):
        storage.delete(key)


def set_cover_image(
    *, session: Session, storage: Storage, product_id: int, seller_id: int, stream: BinaryIO
) -> Product:
    """Decode a cover image, store its thumbnails and point the product at them."""
    product = _owned_product(session, product_id, seller_id)
    images = make_cover_images(stream)
    prefix = f"covers/{product_id}/{uuid.uuid4().hex}"
    for variant, data in images.variants.items():
        storage.put(
            f"{prefix}/{variant}.{images.extension}", io.BytesIO(data), content_type=images.content_type
        )
    old = product.cover_key
    product.cover_key = prefix
    product.updated_at = utcnow()
    session.add(product)
    session.flush()
    if old:
        for variant in images.variants:
            with contextlib.suppress(StorageError):
                storage.delete(f"{old}/{variant}.{images.extension}")
    return product


def _owned_product(session: Session, product_id: int, seller_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None or product.status == ProductStatus.DELETED.value:
        raise NotFound("Product not found.")
    seller = session.get(User, seller_id)
    if seller is None or seller.disabled:
        raise PermissionDenied("You can only change your own products.")
    if product.seller_id != seller_id and seller.role != "admin":
        raise PermissionDenied("You can only change your own products.")
    return product


def _has_orders(session: Session, product_id: int) -> bool:
    return bool(session.exec(select(exists().where(OrderItem.product_id == product_id))).one())


def publish_product(*, session: Session, storage: Storage, product_id: int, seller_id: int) -> Product:
    """Publish a product; refused while any of its files is missing from storage."""
    product = _owned_product(session, product_id, seller_id)
    files = session.exec(select(ProductFile).where(ProductFile.product_id == product_id)).all()
    if not files:
        raise DomainError("Add at least one file before publishing.")
    missing = [f.filename for f in files if not storage.exists(f.storage_key)]
    if missing:
        raise DomainError(f"These files are missing from storage: {', '.join(missing)}. Upload them again.")
    product.status = ProductStatus.PUBLISHED.value
    product.unpublished_reason = ""
    product.updated_at = utcnow()
    session.add(product)
    session.flush()
    return product


def unpublish_product(*, session: Session, product_id: int, seller_id: int) -> Product:
    """Take a product off the store; buyers who own it keep their downloads."""
    product = _owned_product(session, product_id, seller_id)
    if product.status == ProductStatus.PUBLISHED.value:
        product.status = ProductStatus.UNPUBLISHED.value
        product.updated_at = utcnow()
        session.add(product)
        session.flush()
    return product


def delete_product(*, session: Session, storage: Storage, product_id: int, seller_id: int) -> None:
    """Delete a product. It disappears for everyone but earlier buyers.

    The row stays (soft delete) because orders point at it. A product nobody ordered
    also loses its files and cover; one with orders keeps them for its buyers' library.
    """
    product = _owned_product(session, product_id, seller_id)
    product.status = ProductStatus.DELETED.value
    product.updated_at = utcnow()
    session.add(product)
    if not _has_orders(session, product_id):
        files = session.exec(select(ProductFile).where(ProductFile.product_id == product_id)).all()
        keys = [f.storage_key for f in files]
        for f in files:
            session.delete(f)
        if product.cover_key:
            keys += [f"{product.cover_key}/{variant}.webp" for variant in ("card", "page")]
            product.cover_key = None
        session.flush()
        for key in keys:
            with contextlib.suppress(StorageError):
                storage.delete(key)
    session.flush()


def get_seller_product(
    *, session: Session, product_id: int, seller_id: int, storage: Storage | None = None
) -> SellerProduct:
    """A product for its seller's edit page (any status but deleted)."""
    product = _owned_product(session, product_id, seller_id)
    files = session.exec(
        select(ProductFile).where(ProductFile.product_id == product_id).order_by(col(ProductFile.id))
    ).all()
    assert product.id is not None
    return SellerProduct(
        id=product.id,
        title=product.title,
        description=product.description,
        price_cents=product.price_cents,
        currency=product.currency,
        pay_what_you_want=product.pay_what_you_want,
        category=product.category,
        tags=[t for t in product.tags.split(",") if t],
        status=product.status,
        sales_count=product.sales_count,
        price_label=format_money(product.price_cents, product.currency),
        cover_url=cover_url(storage, product.cover_key, "card", public=False),
        files=[
            SellerFile(
                id=f.id,
                filename=f.filename,
                size_bytes=f.size_bytes,
                version=f.version,
                content_type=f.content_type,
            )
            for f in files
            if f.id is not None
        ],
        created_at=product.created_at,
    )


def list_seller_products(*, session: Session, seller_id: int) -> list[Product]:
    """All of a seller's products but deleted ones, newest first."""
    return list(
        session.exec(
            select(Product)
            .where(Product.seller_id == seller_id, Product.status != ProductStatus.DELETED.value)
            .order_by(col(Product.created_at).desc(), col(Product.id).desc())
        ).all()
    )


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


# --- buyer side: listing, search, product page ------------------------------------


SORT_DESCENDING = {"newest": True, "price_asc": False, "price_desc": True, "best_selling": True}


def _sort_columns(sort: str, entity: type[Product] = Product) -> tuple[ColumnElement, ColumnElement, bool]:
    """(sort key column, tie-breaker, descending) for a sort order."""
    if sort in ("price_asc", "price_desc"):
        key = col(entity.price_cents)
    elif sort == "best_selling":
        key = col(entity.sales_count)
    else:
        key = col(entity.created_at)
    return key, col(entity.id), SORT_DESCENDING[sort]


def _encode_cursor(sort: str, product: Product) -> str:
    if sort in ("price_asc", "price_desc"):
        key: object = product.price_cents
    elif sort == "best_selling":
        key = product.sales_count
    else:
        created = aware(product.created_at)
        assert created is not None
        key = created.isoformat()
    raw = json.dumps([sort, key, product.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(sort: str, cursor: str) -> tuple[object, int]:
    """The (key, id) a cursor points after; DomainError when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, key, last_id = json.loads(raw)
        if cursor_sort != sort or isinstance(last_id, bool) or not isinstance(last_id, int):
            raise ValueError("cursor from another listing")
        if sort == "newest":
            parsed = aware(datetime.fromisoformat(key))
            return parsed, last_id
        if isinstance(key, bool) or not isinstance(key, int):
            raise ValueError("bad key")
        return key, last_id
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise DomainError("That page link is out of date. Start again from the first page.") from exc


#: How a listing finds its rows (see :func:`search_products`). A listing first asks how many
#: rows its most selective filter lets through, reading at most ``SMALL_SET + 1`` index entries.
#: Up to SMALL_SET rows, it collects them all and sorts them (~3 us a row); above that it walks
#: the index of its sort order and tests each row, which then meets a match at least every
#: N / SMALL_SET rows (a page of 24 is then found within ~1,200 rows at 100,000 products).
SMALL_SET = 2000
Strategy = Literal["auto", "collect", "walk"]


@dataclass(frozen=True)
class _Filter:
    """One buyer filter as SQL: ``clause`` may use an index, ``plain`` never does (so that a walk
    stays on the sort order's index), ``candidates`` selects the ids it lets through."""

    name: str
    clause: ColumnElement
    plain: ColumnElement
    candidates: Select
    #: SQLite search only: the FTS5 query, for checking a batch of rows (see :func:`_checked_ids`).
    fts_query: str = ""


def _search_words(query: str) -> list[str]:
    return _SEARCH_TOKEN.findall(query.lower())[:8]


def _unindexed(dialect: str, column: ColumnElement) -> ColumnElement:
    """``column`` in a form no index serves: SQLite's unary ``+``; other databases plan by cost."""
    if dialect != "sqlite":
        return column
    return literal_column(f"+{Product.__tablename__}.{column.key}", type_=column.type)


def _search_filter(dialect: str, words: list[str]) -> _Filter:
    """Products whose title, description or tags hold every word.

    The last word also matches as a prefix ("photo" finds "photography"), so results
    appear while the buyer types. Words are reduced to letters and digits: nothing the
    buyer types reaches the FTS query syntax.
    """
    published = col(Product.status) == ProductStatus.PUBLISHED.value
    if dialect == "sqlite":
        fts = (" ".join(f'"{w}"' for w in words[:-1]) + f' "{words[-1]}"*').strip()
        matches = "SELECT rowid FROM product_fts WHERE product_fts MATCH :fts_query"
        return _Filter(
            "search",
            text(f"product.id IN ({matches})").bindparams(fts_query=fts),
            text(f"+product.id IN ({matches})").bindparams(fts_query=fts),
            select(literal_column("rowid"))
            .select_from(table("product_fts"))
            .where(text("product_fts MATCH :fts_query").bindparams(fts_query=fts)),
            fts_query=fts,
        )
    if dialect == "postgresql":
        tsquery = " & ".join([*words[:-1], f"{words[-1]}:*"])
        clause = text("product.search_vector @@ to_tsquery('english', :ts_query)").bindparams(
            ts_query=tsquery
        )
        return _Filter("search", clause, clause, select(col(Product.id)).where(published, clause))
    # Any other database: a plain (slow) substring match, so the app still works.
    haystack = func.lower(Product.title + " " + Product.tags + " " + Product.description)
    clause = and_(*[haystack.contains(w) for w in words])
    return _Filter("search", clause, clause, select(col(Product.id)).where(published, clause))


def _filters(
    dialect: str,
    query: str,
    category: str,
    min_price_cents: int | None,
    max_price_cents: int | None,
    seller_id: int | None,
) -> list[_Filter]:
    """The listing's filters, most likely to be selective first."""
    published = col(Product.status) == ProductStatus.PUBLISHED.value
    out: list[_Filter] = []

    def add(name: str, column: ColumnElement, make: Callable[[ColumnElement], ColumnElement]) -> None:
        clause = make(column)
        candidates = select(col(Product.id)).where(published, clause)
        out.append(_Filter(name, clause, make(_unindexed(dialect, column)), candidates))

    words = _search_words(query)
    if words:
        out.append(_search_filter(dialect, words))
    if seller_id is not None:
        add("seller", col(Product.seller_id), lambda c: c == seller_id)
    if min_price_cents is not None or max_price_cents is not None:
        low = min_price_cents if min_price_cents is not None else -1
        high = max_price_cents if max_price_cents is not None else MAX_PRICE_CENTS + 1
        add("price", col(Product.price_cents), lambda c: and_(c >= low, c <= high))
    if category:
        value = category.strip().lower()
        add("category", col(Product.category), lambda c: c == value)
    return out


def _walk_uses_index(sort: str, name: str) -> bool:
    """Whether a filter narrows the index a walk in ``sort`` order reads (kept indexable)."""
    if sort == "newest":
        return name in ("category", "seller")  # (status, category, created_at, id), (seller_id, status, ...)
    return sort in ("price_asc", "price_desc") and name == "price"  # a range of (status, price_cents, id)


def _candidate_counts(session: Session, dialect: str, filters: list[_Filter]) -> list[int]:
    """How many rows each filter lets through, as far as the choice needs: exact up to SMALL_SET + 1.

    SQLite counts, reading at most SMALL_SET + 1 index entries per filter, in one statement.
    PostgreSQL gives its planner's estimate (EXPLAIN plans without reading rows; counting
    there would fetch every matching heap row to recheck the full-text match).
    """
    if not filters:
        return []
    if dialect == "postgresql":
        conn = session.connection()
        counts = []
        for f in filters:
            compiled = f.candidates.compile(dialect=conn.dialect)
            plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar_one()
            counts.append(int(plan[0]["Plan"]["Plan Rows"]))
        return counts
    capped = [
        select(func.count()).select_from(f.candidates.limit(SMALL_SET + 1).subquery()).scalar_subquery()
        for f in filters
    ]
    return list(session.connection().execute(select(*capped)).one())


def search_products(
    *,
    session: Session,
    storage: Storage | None = None,
    query: str = "",
    category: str = "",
    min_price_cents: int | None = None,
    max_price_cents: int | None = None,
    seller_id: int | None = None,
    sort: str = "newest",
    cursor: str | None = None,
    limit: int = 24,
    strategy: Strategy = "auto",
) -> ProductPage:
    """Published products matching a search and filters, one keyset page at a time.

    Two ways to find a page, with the same result: when one filter lets few rows through
    (at most :data:`SMALL_SET`: a rare word, a narrow price range, a small shop), "collect"
    reads those rows and sorts them; otherwise "walk" reads the sort order's index from the
    cursor on and tests each row, stopping at a full page. A filter that lets nothing through
    answers at once. On SQLite, a search that is not the collected filter checks the rows the
    other filters find in order a batch at a time against its index (a word in most products
    fills the page from the first batch, before any counting).

    Args:
        query: Words that must all appear in the title, description or tags.
        category: Only this category ("" for all).
        min_price_cents / max_price_cents: List-price range, inclusive.
        seller_id: Only this seller's products.
        sort: One of :data:`SORT_ORDERS`.
        cursor: ``next_cursor`` of the previous page; None for the first page.
        limit: Page size (1 to 100).
        strategy: "auto" picks as above; "collect" or "walk" force one (tests, benchmarks).

    Raises:
        DomainError: For an unknown sort or a cursor that is not from this listing.
    """
    if sort not in SORT_ORDERS:
        raise DomainError(f"Unknown sort order {sort!r}.")
    if strategy not in ("auto", "collect", "walk"):
        raise DomainError(f"Unknown strategy {strategy!r}.")
    limit = min(max(int(limit), 1), MAX_PAGE_SIZE)
    after = _decode_cursor(sort, cursor) if cursor else None
    dialect = session.get_bind().dialect.name
    filters = _filters(dialect, query, category, min_price_cents, max_price_cents, seller_id)

    # SQLite searches: rows found in order without the search are checked against the search
    # index a batch at a time (:func:`_checked_ids`), never building the whole match list, when
    # every such row is worth checking: a driver's few rows, or a range of the sort order's index.
    # (A walk that tests other filters row by row keeps ``id IN (matches)``: that test reads only
    # the index entry, so the walk never opens the rows the search rejects.)
    search = next((f for f in filters if f.name == "search"), None)
    others = [f for f in filters if f is not search]
    walk_checks = (
        dialect == "sqlite" and search is not None and all(_walk_uses_index(sort, f.name) for f in others)
    )
    first: list[int] = []
    resume: tuple[object, int] | None = None
    if walk_checks and strategy != "collect":
        assert search is not None
        # Optimistically first (auto): one batch of the walk. A word in many products fills the
        # page from it, without the counting below (which reads the word's matches once more).
        candidates = functools.partial(_candidate_rows, "walk", sort, others, None)
        rounds = 1 if strategy == "auto" else None
        first, resume = _checked_ids(session, sort, search.fts_query, candidates, after, limit + 1, rounds)
        if resume is None:
            return _page_of(session, storage, sort, first, limit)

    driver: _Filter | None = None
    if strategy != "walk":
        # A filter the walk's index already narrows costs the walk nothing: only the others count.
        testing = [f for f in filters if strategy == "collect" or not _walk_uses_index(sort, f.name)]
        counts = _candidate_counts(session, dialect, testing)
        if counts and min(counts) == 0 and dialect != "postgresql":
            return ProductPage(items=[], next_cursor=None)
        smallest = min(zip(counts, range(len(testing)), strict=True), default=None)
        if smallest is not None and smallest[0] <= SMALL_SET:
            driver = testing[smallest[1]]
    plan = "collect" if strategy == "collect" or (strategy == "auto" and driver is not None) else "walk"

    if (plan == "walk" and walk_checks) or (
        dialect == "sqlite" and plan == "collect" and search is not None and driver not in (None, search)
    ):
        assert search is not None
        if plan == "walk" and resume is not None:  # go on from the first batch
            rest, _ = _checked_ids(
                session, sort, search.fts_query, candidates, resume, limit + 1 - len(first)
            )
            return _page_of(session, storage, sort, first + rest, limit)
        candidates = functools.partial(_candidate_rows, plan, sort, others, driver)
        ids, _ = _checked_ids(session, sort, search.fts_query, candidates, after, limit + 1)
        return _page_of(session, storage, sort, ids, limit)

    published = col(Product.status) == ProductStatus.PUBLISHED.value
    key_col, id_col, descending = _sort_columns(sort, Product)
    if plan == "collect":
        # Only the driver may use an index; the other filters test the driver's few rows. The
        # (id, sort key) pairs are materialised first, so no index order tempts the planner into
        # a walk; only the page's rows are then read whole.
        where = [published, *(f.clause if driver in (None, f) else f.plain for f in filters)]
        if after is not None:
            where.append(_after(sort, after, key_col, id_col))
        found = select(id_col.label("id"), key_col.label("sort_key")).where(*where).cte("listing_rows")
        if dialect in ("sqlite", "postgresql"):
            found = found.prefix_with("MATERIALIZED")
        page_key, page_id = found.c.sort_key, found.c.id
        page_order = (page_key.desc(), page_id.desc()) if descending else (page_key.asc(), page_id.asc())
        page = select(page_id, page_key).order_by(*page_order).limit(limit + 1).subquery("listing_page")
        page_key, page_id = page.c.sort_key, page.c.id
        statement = (
            select(Product, User)
            .join(page, page_id == col(Product.id))
            .join(User, col(User.id) == col(Product.seller_id))
            .order_by(*((page_key.desc(), page_id.desc()) if descending else (page_key.asc(), page_id.asc())))
        )
    else:
        where = [published, *(f.clause if _walk_uses_index(sort, f.name) else f.plain for f in filters)]
        if after is not None:
            where.append(_after(sort, after, key_col, id_col))
        order = (key_col.desc(), id_col.desc()) if descending else (key_col.asc(), id_col.asc())
        statement = (
            select(Product, User)
            .join(User, col(User.id) == col(Product.seller_id))
            .where(*where)
            .order_by(*order)
            .limit(limit + 1)
        )
    rows = session.exec(statement).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    items = [_card(p, u, storage) for p, u in rows]
    next_cursor = _encode_cursor(sort, rows[-1][0]) if has_more and rows else None
    return ProductPage(items=items, next_cursor=next_cursor)


#: The first batch of rows a SQLite search checks against its index (see :func:`_checked_ids`).
CHECK_BATCH = 1000
_FTS_CHECK = text(
    "SELECT rowid FROM product_fts WHERE product_fts MATCH :fts_query AND rowid BETWEEN :low AND :high "
    "AND +rowid IN (SELECT value FROM json_each(:ids))"
)


def _candidate_rows(
    plan: str,
    sort: str,
    filters: list[_Filter],
    driver: _Filter | None,
    after: tuple[object, int] | None,
    count: int,
) -> Select:
    """The ids of the next ``count`` rows that pass ``filters``, in ``sort`` order after ``after``.

    "collect": only the driver may use an index, the rows it lets through are sorted; "walk":
    the sort order's index is read from ``after`` on.
    """
    published = col(Product.status) == ProductStatus.PUBLISHED.value
    key_col, id_col, descending = _sort_columns(sort, Product)
    if plan == "collect":
        where = [published, *(f.clause if driver in (None, f) else f.plain for f in filters)]
    else:
        where = [published, *(f.clause if _walk_uses_index(sort, f.name) else f.plain for f in filters)]
    if after is not None:
        where.append(_after(sort, after, key_col, id_col))
    if plan == "collect":
        found = select(id_col.label("id"), key_col.label("sort_key")).where(*where)
        rows = found.cte("listing_rows").prefix_with("MATERIALIZED")
        key_col, id_col = rows.c.sort_key, rows.c.id
        statement = select(id_col)
    else:
        statement = select(id_col).where(*where)
    order = (key_col.desc(), id_col.desc()) if descending else (key_col.asc(), id_col.asc())
    return statement.order_by(*order).limit(count)


def _checked_ids(
    session: Session,
    sort: str,
    fts_query: str,
    candidates: Callable[[tuple[object, int] | None, int], Select],
    after: tuple[object, int] | None,
    wanted: int,
    rounds: int | None = None,
) -> tuple[list[int], tuple[object, int] | None]:
    """Up to ``wanted`` ids, in order, of the candidate rows that also match ``fts_query`` (SQLite).

    Each batch of candidates is checked in one pass over the search index limited to the
    batch's id range, against the batch's ids (a few hundred): far cheaper than building the
    index of every match (75,000 rows for a word in 75% of products) that ``id IN (...)`` builds,
    and than a lookup per row (a prefix query longer than the prefix index merges all its terms
    at every lookup).

    At most ``rounds`` batches are read (None: as many as it takes). Returns the ids, and None
    when they are final (a full page, or the candidates ran out) or else the position (sort key,
    id) to go on from.
    """
    conn = session.connection()
    found: list[int] = []
    batch = CHECK_BATCH
    while True:
        ids = conn.execute(candidates(after, batch)).scalars().all()
        if not ids:
            break
        listed = f"[{','.join(map(str, ids))}]"
        params = {"fts_query": fts_query, "low": min(ids), "high": max(ids), "ids": listed}
        matches = set(conn.execute(_FTS_CHECK, params).scalars())
        found += [i for i in ids if i in matches]
        if len(ids) < batch or len(found) >= wanted:
            break
        # The next batch starts after this one's last row (its sort key read by primary key) and
        # is sized by the share of rows that matched so far (half again as many, at most 8 times more).
        key_col, id_col, _ = _sort_columns(sort, Product)
        after = (conn.execute(select(key_col).where(id_col == ids[-1])).scalar_one(), ids[-1])
        if rounds is not None:
            rounds -= 1
            if rounds <= 0:
                return found, after
        share = max(len(matches), 1) / len(ids)
        batch = min(max(int((wanted - len(found)) / share * 1.5), CHECK_BATCH), batch * 8)
    return found[:wanted], None


def _page_of(session: Session, storage: Storage | None, sort: str, ids: list[int], limit: int) -> ProductPage:
    """The page of products ``ids`` (in that order; one more than ``limit`` means there is a next page)."""
    rows = session.exec(
        select(Product, User)
        .join(User, col(User.id) == col(Product.seller_id))
        .where(col(Product.id).in_(ids[:limit]))
    ).all()
    by_id = {p.id: (p, u) for p, u in rows}
    ordered = [by_id[i] for i in ids[:limit] if i in by_id]
    items = [_card(p, u, storage) for p, u in ordered]
    next_cursor = _encode_cursor(sort, ordered[-1][0]) if len(ids) > limit and ordered else None
    return ProductPage(items=items, next_cursor=next_cursor)


def _after(
    sort: str, position: tuple[object, int], key_col: ColumnElement, id_col: ColumnElement
) -> ColumnElement:
    """Rows after the cursor's (key, id) in ``sort`` order."""
    key, last_id = position
    if SORT_DESCENDING[sort]:
        return tuple_(key_col, id_col) < tuple_(key, last_id)
    return tuple_(key_col, id_col) > tuple_(key, last_id)


def list_published(
    *, session: Session, limit: int = 24, offset: int = 0, storage: Storage | None = None
) -> list[ProductCard]:
    """Published products, newest first (small offsets only; listings use :func:`search_products`)."""
    rows = session.exec(
        select(Product, User)
        .join(User, col(User.id) == col(Product.seller_id))
        .where(Product.status == ProductStatus.PUBLISHED.value)
        .order_by(col(Product.created_at).desc(), col(Product.id).desc())
        .limit(min(max(limit, 1), MAX_PAGE_SIZE))
        .offset(max(offset, 0))
    ).all()
    return [_card(p, u, storage) for p, u in rows]


def count_published(*, session: Session) -> int:
    return session.exec(
        select(func.count()).select_from(Product).where(Product.status == ProductStatus.PUBLISHED.value)
    ).one()


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
    if user is None or user.disabled or user.role not in ("seller", "admin") or user.id is None:
        raise NotFound("No seller goes by that name.")
    return SellerProfile(
        id=user.id, name=user.display_name or user.email.split("@")[0], handle=user.handle or ""
    )
