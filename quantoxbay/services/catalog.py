"""Catalog: sellers create and publish products with files; buyers list and open them."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from typing import BinaryIO

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, select

from quantoxbay.models import Product, ProductFile, ProductStatus, User, utcnow
from quantoxbay.services import DomainError, NotFound, PermissionDenied
from quantoxbay.services.money import MAX_PRICE_CENTS, format_money, validate_currency
from quantoxbay.storage import Storage

MAX_TITLE = 200
MAX_DESCRIPTION = 20_000
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ ()-]+")


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


class ProductDetail(ProductCard):
    """A product page."""

    description: str
    status: str
    files: list[ProductFilePublic]
    tags: list[str]


def safe_filename(name: str) -> str:
    """The last path part of a client-supplied name, reduced to harmless characters."""
    name = unicodedata.normalize("NFKC", name).replace("\\", "/").split("/")[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    if not name or set(name) <= {"_"}:
        raise DomainError("That file name is not allowed. Rename the file and try again.")
    return name[:200]


def _validate_fields(title: str, description: str, price_cents: int, currency: str) -> tuple[str, str, str]:
    title = title.strip()
    if not title:
        raise DomainError("Give the product a title.")
    if len(title) > MAX_TITLE:
        raise DomainError(f"Titles are at most {MAX_TITLE} characters.")
    if len(description) > MAX_DESCRIPTION:
        raise DomainError(f"Descriptions are at most {MAX_DESCRIPTION:,} characters.")
    if not isinstance(price_cents, int) or price_cents < 0 or price_cents > MAX_PRICE_CENTS:
        raise DomainError("The price must be between 0 and 100,000.00.")
    # Stripe's minimum charge is 0.50 in most currencies: anything between free and that cannot be paid.
    if 0 < price_cents < 50:
        raise DomainError("Paid products cost at least 0.50; use 0 for a free product.")
    return title, description, validate_currency(currency)


def create_product(
    *,
    session: Session,
    seller_id: int,
    title: str,
    description: str = "",
    price_cents: int,
    currency: str = "usd",
    category: str = "",
    tags: list[str] | None = None,
) -> Product:
    """Create a draft product for a seller."""
    seller = session.get(User, seller_id)
    if seller is None or seller.role not in ("seller", "admin"):
        raise PermissionDenied("Only sellers can create products.")
    title, description, currency = _validate_fields(title, description, price_cents, currency)
    product = Product(
        seller_id=seller_id,
        title=title,
        description=description,
        price_cents=price_cents,
        currency=currency,
        category=category.strip().lower()[:60],
        tags=",".join(sorted({t.strip().lower() for t in tags or [] if t.strip()}))[:500],
    )
    session.add(product)
    session.flush()
    return product


class _HashingReader:
    """Wraps a stream, hashing and counting what passes through (one pass, constant memory)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.sha256.update(chunk)
        return chunk


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
    """Stream a file into storage and attach it to the seller's product."""
    product = _owned_product(session, product_id, seller_id)
    name = safe_filename(filename)
    key = f"products/{product.id}/{uuid.uuid4().hex}/{name}"
    reader = _HashingReader(stream)
    size = storage.put(key, reader, content_type=content_type, max_bytes=max_bytes)  # type: ignore[arg-type]
    if size == 0:
        storage.delete(key)
        raise DomainError(f"{name} is empty. Upload a file with content.")
    record = ProductFile(
        product_id=product_id,
        filename=name,
        storage_key=key,
        size_bytes=size,
        content_type=content_type[:120] or "application/octet-stream",
        sha256=reader.sha256.hexdigest(),
    )
    session.add(record)
    session.flush()
    return record


def _owned_product(session: Session, product_id: int, seller_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None or product.status == ProductStatus.DELETED.value:
        raise NotFound("Product not found.")
    seller = session.get(User, seller_id)
    if product.seller_id != seller_id and (seller is None or seller.role != "admin"):
        raise PermissionDenied("You can only change your own products.")
    return product


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


def _card(product: Product, seller: User) -> ProductCard:
    assert product.id is not None
    return ProductCard(
        id=product.id,
        title=product.title,
        seller_name=seller.display_name or seller.email.split("@")[0],
        seller_handle=seller.handle,
        price_cents=product.price_cents,
        currency=product.currency,
        price_label=format_money(product.price_cents, product.currency),
        category=product.category,
        cover_url=None,
    )


def list_published(*, session: Session, limit: int = 24, offset: int = 0) -> list[ProductCard]:
    """Published products, newest first."""
    rows = session.exec(
        select(Product, User)
        .join(User, User.id == Product.seller_id)
        .where(Product.status == ProductStatus.PUBLISHED.value)
        .order_by(Product.created_at.desc(), Product.id.desc())  # type: ignore[attr-defined]
        .limit(min(max(limit, 1), 100))
        .offset(max(offset, 0))
    ).all()
    return [_card(p, u) for p, u in rows]


def count_published(*, session: Session) -> int:
    return session.exec(
        select(func.count()).select_from(Product).where(Product.status == ProductStatus.PUBLISHED.value)
    ).one()


def get_published_product(*, session: Session, product_id: int) -> ProductDetail:
    """A product page as buyers see it; unpublished or deleted ones are NotFound."""
    row = session.exec(
        select(Product, User)
        .join(User, User.id == Product.seller_id)
        .where(Product.id == product_id, Product.status == ProductStatus.PUBLISHED.value)
    ).first()
    if row is None:
        raise NotFound("This product does not exist or is no longer for sale.")
    product, seller = row
    files = session.exec(
        select(ProductFile).where(ProductFile.product_id == product_id).order_by(ProductFile.id)  # type: ignore[arg-type]
    ).all()
    card = _card(product, seller)
    return ProductDetail(
        **card.model_dump(),
        description=product.description,
        status=product.status,
        files=[
            ProductFilePublic(id=f.id, filename=f.filename, size_bytes=f.size_bytes) for f in files if f.id
        ],
        tags=[t for t in product.tags.split(",") if t],
    )


def list_seller_products(*, session: Session, seller_id: int) -> list[Product]:
    return list(
        session.exec(
            select(Product)
            .where(Product.seller_id == seller_id, Product.status != ProductStatus.DELETED.value)
            .order_by(Product.created_at.desc())  # type: ignore[attr-defined]
        ).all()
    )
