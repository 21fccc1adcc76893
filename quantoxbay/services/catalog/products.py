"""Products as their sellers make them: create, edit, publish, unpublish, delete, the edit view."""

from __future__ import annotations

import contextlib
import re
from datetime import datetime
from typing import TypedDict

from pydantic import BaseModel
from sqlalchemy import exists
from sqlmodel import Session, col, select

from quantoxbay import routes
from quantoxbay.constants import CATEGORIES as CATEGORIES
from quantoxbay.models import OrderItem, Product, ProductFile, ProductStatus, Role, User, utcnow
from quantoxbay.services import DomainError, NotFound, PermissionDenied, connect, recovery
from quantoxbay.services.catalog.views import cover_url
from quantoxbay.services.money import MAX_PRICE_CENTS, format_money, validate_currency
from quantoxbay.services.text import multi_line, one_line
from quantoxbay.storage import Storage, StorageError

MAX_TITLE = 200
MAX_DESCRIPTION = 20_000
MAX_TAGS = 10
_TAG_RE = re.compile(r"[^\w -]+")


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
    removed_notice: str  # "" unless an admin took it down (removal_notice)
    sales_count: int
    price_label: str
    cover_url: str | None
    files: list[SellerFile]
    created_at: datetime


# --- validation -----------------------------------------------------------------


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
    if seller is None or seller.role not in (Role.SELLER.value, Role.ADMIN.value) or seller.disabled:
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
    if product.status == ProductStatus.PUBLISHED.value and (price_cents > 0 or pay_what_you_want):
        connect.require_charges_enabled(session=session, seller_id=seller_id)
    product.title, product.description = title, description
    product.price_cents, product.currency = price_cents, currency
    product.category, product.tags = _clean_category(category), _clean_tags(tags)
    product.pay_what_you_want = bool(pay_what_you_want)
    product.updated_at = utcnow()
    session.add(product)
    session.flush()
    return product


def _owned_product(session: Session, product_id: int, seller_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None or product.status == ProductStatus.DELETED.value:
        raise NotFound("Product not found.")
    seller = session.get(User, seller_id)
    if seller is None or seller.disabled:
        raise PermissionDenied("You can only change your own products.")
    if product.seller_id != seller_id and seller.role != Role.ADMIN.value:
        raise PermissionDenied("You can only change your own products.")
    return product


def _has_orders(session: Session, product_id: int) -> bool:
    return bool(session.exec(select(exists().where(col(OrderItem.product_id) == product_id))).one())


def publish_product(*, session: Session, storage: Storage, product_id: int, seller_id: int) -> Product:
    """Publish a product; refused while an admin holds it down or any of its files is missing
    from storage."""
    product = _owned_product(session, product_id, seller_id)
    if product.status == ProductStatus.REMOVED.value:
        # Admins too: lifting the hold is admin.restore_product, which is logged and tells the seller.
        raise PermissionDenied(removal_notice(product.unpublished_reason))
    # Selling needs a proven mailbox (receipts' replies, refund and dispute notices reach it).
    recovery.require_verified_email(session=session, user_id=seller_id)
    files = session.exec(select(ProductFile).where(ProductFile.product_id == product_id)).all()
    if not files:
        raise DomainError("Add at least one file before publishing.")
    missing = [f.filename for f in files if not storage.exists(f.storage_key)]
    if missing:
        raise DomainError(f"These files are missing from storage: {', '.join(missing)}. Upload them again.")
    if product.price_cents > 0 or product.pay_what_you_want:
        # Each sale is a destination charge to the seller's connected account (services.checkout).
        connect.require_charges_enabled(session=session, seller_id=seller_id)
    product.status = ProductStatus.PUBLISHED.value
    product.unpublished_reason = ""
    product.updated_at = utcnow()
    session.add(product)
    session.flush()
    return product


def removal_notice(reason: str) -> str:
    """What the seller of a product an admin took down reads (edit page, refused "Publish")."""
    reason = reason.strip()
    if reason and reason[-1] not in ".!?":
        reason += "."
    return f"An admin took this product off the store: {reason} It stays off until an admin restores it."


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


def _removed_notice(product: Product) -> str:
    return removal_notice(product.unpublished_reason) if product.status == ProductStatus.REMOVED.value else ""


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
        removed_notice=_removed_notice(product),
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


class SellerProductRow(TypedDict):
    """A line of the seller's product list (SellerProductsState holds them as they are)."""

    id: int
    title: str
    status: str
    price_cents: int
    currency: str
    price: str  # formatted
    sales: int
    edit_url: str
    removed_reason: str  # why an admin took it down ("" unless status is "removed")


def list_seller_products(*, session: Session, seller_id: int) -> list[SellerProductRow]:
    """All of a seller's products but deleted ones, newest first."""
    products = session.exec(
        select(Product)
        .where(Product.seller_id == seller_id, Product.status != ProductStatus.DELETED.value)
        .order_by(col(Product.created_at).desc(), col(Product.id).desc())
    ).all()
    rows = []
    for p in products:
        assert p.id is not None  # read from the table
        rows.append(
            SellerProductRow(
                id=p.id,
                title=p.title,
                status=p.status,
                price_cents=p.price_cents,
                currency=p.currency,
                price=format_money(p.price_cents, p.currency),
                sales=p.sales_count,
                edit_url=routes.seller_product_edit_path(p.id),
                removed_reason=p.unpublished_reason if p.status == ProductStatus.REMOVED.value else "",
            )
        )
    return rows
