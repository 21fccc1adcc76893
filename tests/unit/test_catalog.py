"""Catalog rules, on SQLite and PostgreSQL: sellers' products and files, buyers' listings and search."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import event, text
from sqlmodel import Session, select

from quantoxbay.models import Product, ProductFile, ProductStatus, Role, utcnow
from quantoxbay.services import DomainError, NotFound, PermissionDenied, catalog
from quantoxbay.services.text import ControlCharacterError, one_line
from quantoxbay.storage import FileTooLarge
from tests.factories import create_published_product, create_user, give_payouts_account

LIMIT = 10_000_000


def _draft(db: Session, seller_id: int, **kwargs) -> Product:
    fields = {"title": "Draft", "price_cents": 500, **kwargs}
    return catalog.create_product(session=db, seller_id=seller_id, **fields)


def _add_file(
    db: Session, storage, product: Product, seller_id: int, name: str = "a.pdf", data: bytes = b"%PDF-1"
):
    assert product.id is not None
    return catalog.add_product_file(
        session=db, storage=storage, product_id=product.id, seller_id=seller_id, filename=name,
        stream=io.BytesIO(data), max_bytes=LIMIT,
    )  # fmt: skip


def _png(width: int = 800, height: int = 600) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(out, "PNG")
    return out.getvalue()


def _search(db: Session, **kwargs) -> list[str]:
    return [c.title for c in catalog.search_products(session=db, **kwargs).items]


# --- creating and editing ------------------------------------------------------


def test_seller_creates_a_draft_with_money_in_cents(db: Session) -> None:
    seller = create_user(db, Role.SELLER)
    product = _draft(db, seller.id, title="  Guide  ", price_cents=1999, currency="EUR", category="ebooks",
                     tags=["Writing", " writing", "Craft", ""])  # fmt: skip
    assert (product.title, product.price_cents, product.currency) == ("Guide", 1999, "eur")
    assert product.status == ProductStatus.DRAFT.value
    assert product.tags == "craft,writing"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": " "}, "title"),
        ({"title": "x" * 201}, "200"),
        ({"price_cents": -1}, "between"),
        ({"price_cents": 49}, "at least 0.50"),
        ({"currency": "xyz"}, "Unsupported currency"),
        ({"category": "weapons"}, "Unknown category"),
        ({"tags": [f"t{i}" for i in range(11)]}, "at most 10 tags"),
    ],
)
def test_invalid_product_fields_are_refused(db: Session, fields: dict, message: str) -> None:
    seller = create_user(db, Role.SELLER)
    with pytest.raises(DomainError, match=message):
        _draft(db, seller.id, **fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": "Guide\nBcc: victim@example.com"}, "The title must be a single line"),
        ({"title": "Guide\r\nX"}, "The title must be a single line"),
        ({"title": "Guide \x1b[31mred"}, "The title must be a single line"),
        ({"title": "Guide\x00"}, "The title must be a single line"),
        ({"title": "Guide\x85next"}, "The title must be a single line"),  # C1: NEXT LINE
        ({"title": "Guide\u2028next"}, "The title must be a single line"),
        ({"description": "Line one\nLine two\x07"}, "The description cannot contain control characters"),
        ({"tags": ["ok", "bad\ntag"]}, "A tag must be a single line"),
        ({"tags": "ok,bad\x1btag"}, "A tag must be a single line"),
    ],
)
def test_control_characters_in_product_text_are_refused(
    db: Session, storage, fields: dict, message: str
) -> None:
    seller = create_user(db, Role.SELLER)
    with pytest.raises(DomainError, match=re.escape(message)):
        _draft(db, seller.id, **fields)
    assert db.exec(select(Product).where(Product.seller_id == seller.id)).all() == []
    product = create_published_product(db, storage, seller, title="Kept")
    with pytest.raises(DomainError, match=re.escape(message)):
        catalog.update_product(session=db, product_id=product.id, seller_id=seller.id,
                               **{"title": "Kept", "price_cents": 500, **fields})  # fmt: skip
    db.refresh(product)
    assert product.title == "Kept"


def test_descriptions_keep_line_breaks_and_tabs(db: Session) -> None:
    seller = create_user(db, Role.SELLER)
    product = _draft(db, seller.id, description="# Guide\r\n\n- one\n\tindented")
    assert product.description == "# Guide\r\n\n- one\n\tindented"


@pytest.mark.parametrize("value", ["Ünïcode title — fine", "tabs\tare controls", "a\u2029b", "DEL\x7f"])
def test_one_line_validator(value: str) -> None:
    if value.startswith("Ünïcode"):
        assert one_line(value, "The title") == value
    else:
        with pytest.raises(ControlCharacterError, match="The title must be a single line"):
            one_line(value, "The title")


def test_free_and_pay_what_you_want_products(db: Session, storage) -> None:
    seller = create_user(db, Role.SELLER)
    free = create_published_product(db, storage, seller, title="Freebie", price_cents=0)
    pwyw = _draft(db, seller.id, title="Tip jar", price_cents=300, pay_what_you_want=True)
    _add_file(db, storage, pwyw, seller.id)
    give_payouts_account(db, seller.id)
    catalog.publish_product(session=db, storage=storage, product_id=pwyw.id, seller_id=seller.id)  # type: ignore[arg-type]
    cards = {c.title: c for c in catalog.search_products(session=db, seller_id=seller.id).items}
    assert cards["Freebie"].price_label == "Free" and free.price_cents == 0
    assert cards["Tip jar"].price_label == "$3.00+" and cards["Tip jar"].pay_what_you_want


def test_buyer_cannot_create_or_change_products(db: Session, storage) -> None:
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    with pytest.raises(PermissionDenied):
        _draft(db, buyer.id)
    product = _draft(db, seller.id)
    with pytest.raises(PermissionDenied):
        catalog.update_product(
            session=db, product_id=product.id, seller_id=buyer.id, title="Mine", price_cents=0
        )
    with pytest.raises(PermissionDenied):
        _add_file(db, storage, product, buyer.id)


def test_another_seller_cannot_touch_my_product(db: Session, storage) -> None:
    owner, other = create_user(db, Role.SELLER), create_user(db, Role.SELLER)
    product = create_published_product(db, storage, owner)
    for call in (
        lambda: catalog.unpublish_product(session=db, product_id=product.id, seller_id=other.id),
        lambda: catalog.delete_product(
            session=db, storage=storage, product_id=product.id, seller_id=other.id
        ),
        lambda: catalog.get_seller_product(session=db, product_id=product.id, seller_id=other.id),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert product.status == ProductStatus.PUBLISHED.value


def test_update_changes_details_and_keeps_status(db: Session, storage) -> None:
    seller = create_user(db, Role.SELLER)
    product = create_published_product(db, storage, seller, title="Old")
    catalog.update_product(
        session=db, product_id=product.id, seller_id=seller.id, title="New title",  # type: ignore[arg-type]
        description="Now *better*", price_cents=2500, category="courses", tags="video, course",
    )  # fmt: skip
    view = catalog.get_seller_product(session=db, product_id=product.id, seller_id=seller.id)  # type: ignore[arg-type]
    assert (view.title, view.price_cents, view.category, view.tags) == (
        "New title",
        2500,
        "courses",
        ["course", "video"],
    )
    assert view.status == ProductStatus.PUBLISHED.value


# --- files ----------------------------------------------------------------------


def test_file_is_streamed_to_storage_with_size_and_hash(db: Session, storage) -> None:
    seller = create_user(db, Role.SELLER)
    product = _draft(db, seller.id)
    record = _add_file(db, storage, product, seller.id, "Guide (v2).pdf", b"%PDF-1.7 hello")
    assert record.filename == "Guide (v2).pdf" and record.size_bytes == 14 and record.version == 1
    assert b"".join(storage.open_range(record.storage_key)) == b"%PDF-1.7 hello"
    assert len(record.sha256) == 64


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.pdf", b"", "empty"),
        ("setup.exe", b"MZ\x90\x00", ".exe files"),
        ("install.sh", b"echo hi", ".sh files"),
        ("Setup.MSI", b"\xd0\xcf\x11\xe0", ".msi files"),
        ("notes.txt", b"MZ\x90\x00\x03\x00", "Windows program"),
        ("photo.jpg", b"\x7fELF\x02\x01\x01", "Linux program"),
        ("../../etc/passwd", b"root:x:0:0", "not a plain file name"),
        ("..\\boot.ini", b"[boot]", "not a plain file name"),
        (".bashrc", b"alias", "not a plain file name"),
        ("a\x00b.txt", b"x", "control characters"),
        ("   ", b"x", "no name"),
    ],
)
def test_refused_uploads_store_nothing(db: Session, storage, name: str, data: bytes, message: str) -> None:
    seller = create_user(db, Role.SELLER)
    product = _draft(db, seller.id)
    with pytest.raises(DomainError, match=message):
        _add_file(db, storage, product, seller.id, name, data)
    assert not list(storage.root.rglob("*.*")), "nothing may be stored"
    assert catalog.get_seller_product(session=db, product_id=product.id, seller_id=seller.id).files == []  # type: ignore[arg-type]


def test_file_over_the_size_limit_stores_nothing(db: Session, storage) -> None:
    seller = create_user(db, Role.SELLER)
    product = _draft(db, seller.id)
    with pytest.raises(FileTooLarge):
        catalog.add_product_file(
            session=db, storage=storage, product_id=product.id, seller_id=seller.id, filename="big.zip",  # type: ignore[arg-type]
            stream=io.BytesIO(b"x" * 2048), max_bytes=1024,
        )  # fmt: skip
    assert not [p for p in storage.root.rglob("*") if p.is_file()]


def test_replacing_a_file_keeps_the_row_and_bumps_the_version(db: Session, storage) -> None:
    seller = create_user(db, Role.SELLER)
    product = create_published_product(db, storage, seller, content=b"version one")
    original = db.exec(ProductFile.__table__.select().where(ProductFile.product_id == product.id)).first()  # type: ignore[attr-defined]
    assert original is not None
    replaced = catalog.replace_product_file(
        session=db, storage=storage, product_id=product.id, seller_id=seller.id, file_id=original.id,  # type: ignore[arg-type]
        filename="file-v2.txt", stream=io.BytesIO(b"version two"), max_bytes=LIMIT,
    )  # fmt: skip
    assert replaced.id == original.id and replaced.version == 2 and replaced.filename == "file-v2.txt"
    assert replaced.storage_key != original.storage_key
    assert b"".join(storage.open_range(replaced.storage_key)) == b"version two"
    assert not storage.exists(original.storage_key)


def test_a_product_without_files_or_with_missing_files_cannot_be_published(db: Session, storage) -> None:
    seller = create_user(db, Role.SELLER)
    product = _draft(db, seller.id)
    with pytest.raises(DomainError, match="at least one file"):
        catalog.publish_product(session=db, storage=storage, product_id=product.id, seller_id=seller.id)  # type: ignore[arg-type]
    record = _add_file(db, storage, product, seller.id, "lost.pdf")
    storage.delete(record.storage_key)
    with pytest.raises(DomainError, match=r"missing from storage: lost\.pdf"):
        catalog.publish_product(session=db, storage=storage, product_id=product.id, seller_id=seller.id)  # type: ignore[arg-type]
    assert product.status == ProductStatus.DRAFT.value


def test_published_product_keeps_its_last_file(db: Session, storage) -> None:
    seller = create_user(db, Role.SELLER)
    product = create_published_product(db, storage, seller)
    view = catalog.get_seller_product(session=db, product_id=product.id, seller_id=seller.id)  # type: ignore[arg-type]
    with pytest.raises(DomainError, match="at least one file"):
        catalog.remove_product_file(
            session=db,
            storage=storage,
            product_id=product.id,
            seller_id=seller.id,
            file_id=view.files[0].id,
        )


def test_cover_image_gets_thumbnails(db: Session, storage) -> None:
    seller = create_user(db, Role.SELLER)
    product = create_published_product(db, storage, seller)
    catalog.set_cover_image(
        session=db,
        storage=storage,
        product_id=product.id,
        seller_id=seller.id,
        stream=io.BytesIO(_png(2000, 900)),
    )
    assert product.cover_key
    with Image.open(io.BytesIO(b"".join(storage.open_range(f"{product.cover_key}/card.webp")))) as card:
        assert card.size == (480, 360) and card.format == "WEBP"
    with Image.open(io.BytesIO(b"".join(storage.open_range(f"{product.cover_key}/page.webp")))) as page:
        assert page.size == (1200, 540)
    detail = catalog.get_published_product(session=db, product_id=product.id, storage=storage)  # type: ignore[arg-type]
    # Buyers get the cover route (a stable, cacheable URL); the seller's own view works for drafts too.
    upload = product.cover_key.removeprefix("covers/")
    assert detail.cover_url == f"/api/covers/{upload}/card.webp"
    assert detail.cover_page_url == f"/api/covers/{upload}/page.webp"
    view = catalog.get_seller_product(session=db, product_id=product.id, seller_id=seller.id, storage=storage)  # type: ignore[arg-type]
    assert view.cover_url and view.cover_url.startswith("data:image/webp;base64,")


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"not an image", "not an image"), (_png()[:60], "damaged|not an image")],
)
def test_bad_cover_images_are_refused(db: Session, storage, data: bytes, message: str) -> None:
    seller = create_user(db, Role.SELLER)
    product = _draft(db, seller.id)
    with pytest.raises(DomainError, match=message):
        catalog.set_cover_image(
            session=db,
            storage=storage,
            product_id=product.id,
            seller_id=seller.id,
            stream=io.BytesIO(data),
        )
    assert product.cover_key is None


# --- publishing lifecycle and visibility ---------------------------------------------


def test_unpublished_and_deleted_products_are_not_found_by_buyers(db: Session, storage) -> None:
    seller = create_user(db, Role.SELLER)
    hidden = create_published_product(db, storage, seller, title="Hidden gem")
    gone = create_published_product(db, storage, seller, title="Gone gem")
    draft = _draft(db, seller.id, title="Draft gem")
    catalog.unpublish_product(session=db, product_id=hidden.id, seller_id=seller.id)  # type: ignore[arg-type]
    catalog.delete_product(session=db, storage=storage, product_id=gone.id, seller_id=seller.id)  # type: ignore[arg-type]
    for product in (hidden, gone, draft):
        with pytest.raises(NotFound):
            catalog.get_published_product(session=db, product_id=product.id)  # type: ignore[arg-type]
    assert _search(db, query="gem") == []
    assert [p["title"] for p in catalog.list_seller_products(session=db, seller_id=seller.id)] == [
        "Draft gem",
        "Hidden gem",
    ]
    with pytest.raises(NotFound):
        catalog.get_seller_product(session=db, product_id=gone.id, seller_id=seller.id)  # type: ignore[arg-type]
    # A product nobody bought loses its files with it.
    assert not [p for p in storage.root.rglob(f"products/{gone.id}/*/*") if p.is_file()]
    # Publishing again brings the unpublished one back.
    catalog.publish_product(session=db, storage=storage, product_id=hidden.id, seller_id=seller.id)  # type: ignore[arg-type]
    assert _search(db, query="gem") == ["Hidden gem"]


def test_description_markdown_is_rendered_without_scripts(db: Session, storage) -> None:
    seller = create_user(db, Role.SELLER)
    evil = (
        "# Hello\n\n**bold** [ok](https://example.com) [bad](javascript:alert(1))\n\n"
        '<script>alert("x")</script>\n\n<img src=x onerror="alert(2)">\n\n'
        '<iframe srcdoc="<script>alert(3)</script>"></iframe>\n\n<a href="#" onclick="alert(4)">x</a>'
    )
    product = create_published_product(db, storage, seller)
    catalog.update_product(
        session=db,
        product_id=product.id,
        seller_id=seller.id,
        title="T",
        description=evil,
        price_cents=100,
    )
    html = catalog.get_published_product(session=db, product_id=product.id).description_html  # type: ignore[arg-type]
    assert "<h1>Hello</h1>" in html and "<strong>bold</strong>" in html
    assert 'href="https://example.com"' in html and "nofollow" in html
    lowered = html.lower()
    for bad in ("<script", "<img", "<iframe", 'href="javascript'):
        assert bad not in lowered, bad
    # Raw HTML is shown as text; no real tag carries an event handler.
    assert not re.search(r"<[a-z][^>]*\son\w+=", lowered)
    assert "&lt;script&gt;" in lowered


def test_product_page_lists_files_and_sale_price(db: Session, storage) -> None:
    seller = create_user(db, Role.SELLER)
    product = create_published_product(db, storage, seller, title="On sale", price_cents=2000)
    product.sale_price_cents = 1500
    product.sale_starts_at = utcnow() - timedelta(hours=1)
    product.sale_ends_at = utcnow() + timedelta(hours=1)
    db.add(product)
    db.flush()
    detail = catalog.get_published_product(session=db, product_id=product.id)  # type: ignore[arg-type]
    assert detail.title == "On sale" and detail.on_sale
    assert (detail.price_label, detail.regular_price_label) == ("$15.00", "$20.00")
    assert [(f.filename, f.size_bytes) for f in detail.files] == [("file.txt", 12)]
    product.sale_ends_at = utcnow() - timedelta(minutes=1)
    db.add(product)
    db.flush()
    assert catalog.get_published_product(session=db, product_id=product.id).price_label == "$20.00"  # type: ignore[arg-type]


# --- listing, search, filters, sort, keyset pages ------------------------------------


def test_search_matches_title_description_and_tags_with_prefixes(db: Session, storage) -> None:
    seller = create_user(db, Role.SELLER)
    create_published_product(db, storage, seller, title="Watercolor brushes")
    p = create_published_product(db, storage, seller, title="Lightroom pack")
    catalog.update_product(
        session=db, product_id=p.id, seller_id=seller.id, title="Lightroom pack",  # type: ignore[arg-type]
        description="Moody presets for travel photography", price_cents=900, tags=["film"],
    )  # fmt: skip
    assert _search(db, query="watercolor") == ["Watercolor brushes"]
    assert _search(db, query="PHOTOGRAPHY") == ["Lightroom pack"]
    assert _search(db, query="photo") == ["Lightroom pack"]  # prefix while typing
    assert _search(db, query="film moody") == ["Lightroom pack"]  # tags + description, all words
    assert _search(db, query="film watercolor") == []
    # FTS syntax in the query is plain text, never an error.
    assert _search(db, query='"unbalanced OR (NEAR* -') == []
    assert set(_search(db, query="")) == {"Watercolor brushes", "Lightroom pack"}


def test_filters_by_category_and_price_range(db: Session, storage) -> None:
    seller = create_user(db, Role.SELLER)
    for title, price, category in [
        ("A", 0, "ebooks"),
        ("B", 500, "ebooks"),
        ("C", 1500, "audio"),
        ("D", 3000, "ebooks"),
    ]:
        p = create_published_product(db, storage, seller, title=title, price_cents=price)
        p.category = category
        db.add(p)
    db.flush()
    assert sorted(_search(db, seller_id=seller.id, category="ebooks")) == ["A", "B", "D"]
    assert sorted(_search(db, seller_id=seller.id, min_price_cents=500, max_price_cents=1500)) == ["B", "C"]
    assert _search(db, seller_id=seller.id, category="ebooks", max_price_cents=0) == ["A"]


def test_sort_orders_and_keyset_pages_cover_every_product_once(db: Session, storage) -> None:
    seller = create_user(db, Role.SELLER)
    base = utcnow()
    for i in range(7):
        p = create_published_product(db, storage, seller, title=f"P{i}", price_cents=100 * (i % 3) + 100)
        p.sales_count = i
        p.created_at = base - timedelta(minutes=i)
        db.add(p)
    db.flush()

    def walk(sort: str) -> list[str]:
        titles, cursor = [], None
        while True:
            page = catalog.search_products(session=db, seller_id=seller.id, sort=sort, cursor=cursor, limit=3)
            titles += [c.title for c in page.items]
            if page.next_cursor is None:
                return titles
            cursor = page.next_cursor

    assert walk("newest") == [f"P{i}" for i in range(7)]
    assert walk("best_selling") == [f"P{i}" for i in reversed(range(7))]
    prices_asc = walk("price_asc")
    assert sorted(prices_asc) == sorted(f"P{i}" for i in range(7))
    assert prices_asc[:3] == ["P0", "P3", "P6"]  # price 100, ties broken by id
    assert walk("price_desc") == list(reversed(prices_asc))


def test_bad_cursor_or_sort_is_a_clear_error(db: Session) -> None:
    with pytest.raises(DomainError, match="out of date"):
        catalog.search_products(session=db, cursor="garbage!!")
    page_cursor = catalog.search._encode_cursor(
        "price_asc", Product(id=1, title="x", seller_id=1, price_cents=5)
    )
    with pytest.raises(DomainError, match="out of date"):
        catalog.search_products(session=db, sort="newest", cursor=page_cursor)
    with pytest.raises(DomainError, match="Unknown sort"):
        catalog.search_products(session=db, sort="id; drop table product")


def test_seller_profile_by_handle(db: Session, storage) -> None:
    seller, buyer = create_user(db, Role.SELLER), create_user(db, Role.BUYER)
    create_published_product(db, storage, seller, title="Shop item")
    assert seller.handle
    profile = catalog.get_seller_profile(session=db, handle=seller.handle)
    assert profile.id == seller.id
    assert _search(db, seller_id=profile.id) == ["Shop item"]
    with pytest.raises(NotFound):
        catalog.get_seller_profile(session=db, handle="no-such-seller")
    assert buyer.handle is None


# --- query strategies: "collect" (few candidates, sorted) and "walk" (sort index, tested) ----------


def _strategy_catalog(db: Session, storage) -> int:
    """24 published products (and a draft) with overlapping words, categories, prices, sales, dates."""
    seller = create_user(db, Role.SELLER)
    other = create_user(db, Role.SELLER)
    base = utcnow()
    words = ["photo", "guide", "budget", "template", "music"]
    for i in range(24):
        owner = seller if i % 3 else other
        p = create_published_product(
            db, storage, owner, title=f"{words[i % 5].title()} {words[(i * 2) % 5]} item{i}",
            price_cents=[0, 500, 999, 1500, 2500][i % 5] + (i % 2) * 50,
        )  # fmt: skip
        p.category = ["ebooks", "audio", "templates"][i % 3]
        p.sales_count = (i * 7) % 5  # many ties: the id must break them the same way everywhere
        p.created_at = base - timedelta(minutes=(i * 37) % 11)  # dates out of id order, with ties
        db.add(p)
    _draft(db, seller.id, title="Photo guide draft")
    db.flush()
    return seller.id


def _walk_all(db: Session, strategy: str, **kwargs) -> list[int]:
    ids, cursor = [], None
    for _ in range(50):
        page = catalog.search_products(session=db, strategy=strategy, cursor=cursor, limit=4, **kwargs)
        ids += [c.id for c in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return ids
    raise AssertionError("the listing never ended")


STRATEGY_CASES = [
    {},
    {"query": "photo"},
    {"query": "pho"},
    {"query": "guide photo"},
    {"query": "nothingmatches"},
    {"category": "audio"},
    {"min_price_cents": 500, "max_price_cents": 1500},
    {"max_price_cents": 0},
    {"query": "music", "category": "ebooks", "min_price_cents": 100},
    {"category": "templates", "min_price_cents": 900, "max_price_cents": 2600},
]


@pytest.mark.parametrize("sort", list(catalog.SORT_ORDERS))
def test_collect_and_walk_strategies_give_identical_pages(db: Session, storage, sort: str) -> None:
    seller_id = _strategy_catalog(db, storage)
    for case in [*STRATEGY_CASES, {"seller_id": seller_id}, {"seller_id": seller_id, "query": "budget"}]:
        walked = _walk_all(db, "walk", sort=sort, **case)
        assert _walk_all(db, "collect", sort=sort, **case) == walked, case
        assert _walk_all(db, "auto", sort=sort, **case) == walked, case
        assert len(set(walked)) == len(walked), f"a product appeared twice: {case}"
        if not case:
            assert len(walked) >= 24


def test_auto_strategy_picks_collect_for_few_candidates_and_walk_for_many(
    db: Session, storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    _strategy_catalog(db, storage)
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(db.connection(), "before_cursor_execute", record)
    expected = _walk_all(db, "walk", query="photo", sort="price_asc")
    # PostgreSQL decides on its planner's estimate: at least 1 row, so a limit of 0 always walks.
    monkeypatch.setattr(catalog.search, "SMALL_SET", 0)
    statements.clear()
    assert _walk_all(db, "auto", query="photo", sort="price_asc") == expected
    assert not any("listing_rows" in s for s in statements), "expected a walk"
    monkeypatch.setattr(catalog.search, "SMALL_SET", 1000)
    # SQLite first checks one batch of the walk: a batch of one row cannot fill a page.
    monkeypatch.setattr(catalog.search, "CHECK_BATCH", 1)
    statements.clear()
    assert _walk_all(db, "auto", query="photo", sort="price_asc") == expected
    assert any("listing_rows" in s for s in statements), "expected collect"
    with pytest.raises(DomainError, match="Unknown strategy"):
        catalog.search_products(session=db, strategy="fastest")  # type: ignore[arg-type]


def _expected_ids(db: Session, sort: str, query: str = "", **filters) -> list[int]:
    """What a listing must return, found the slow way: every published product, filtered and sorted
    in Python; only which products match the words is asked of the database's search index."""
    products = db.exec(select(Product).where(Product.status == ProductStatus.PUBLISHED.value)).all()
    if query:
        dialect = db.get_bind().dialect.name
        words = catalog.search._search_words(query)
        if dialect == "sqlite":
            fts = catalog.search._search_filter(dialect, words).fts_query
            sql = "SELECT rowid FROM product_fts WHERE product_fts MATCH :q"
        else:
            fts = " & ".join([*words[:-1], f"{words[-1]}:*"])
            sql = "SELECT id FROM product WHERE search_vector @@ to_tsquery('english', :q)"
        matching = set(db.connection().execute(text(sql), {"q": fts}).scalars())
        products = [p for p in products if p.id in matching]
    if "category" in filters:
        products = [p for p in products if p.category == filters["category"]]
    if "seller_id" in filters:
        products = [p for p in products if p.seller_id == filters["seller_id"]]
    low, high = filters.get("min_price_cents", -1), filters.get("max_price_cents", 10**9)
    products = [p for p in products if low <= p.price_cents <= high]
    keys = {"newest": "created_at", "price_asc": "price_cents", "price_desc": "price_cents"}
    key = keys.get(sort, "sales_count")
    products.sort(key=lambda p: (getattr(p, key), p.id), reverse=catalog.SORT_DESCENDING[sort])
    return [p.id for p in products]  # type: ignore[misc]


@pytest.mark.parametrize("sort", list(catalog.SORT_ORDERS))
def test_searches_checked_in_batches_of_any_size_give_the_right_pages(
    db: Session, storage, monkeypatch: pytest.MonkeyPatch, sort: str
) -> None:
    seller_id = _strategy_catalog(db, storage)
    cases = [c for c in STRATEGY_CASES if "query" in c] + [
        {"query": "guide", "category": "audio"},
        {"query": "templ", "min_price_cents": 500, "max_price_cents": 2000},
        {"query": "budget", "seller_id": seller_id},
    ]
    # Batches of 1..3 rows: many rounds, the walk going on from the first batch when it does not
    # fill the page (SMALL_SET 0: always walk after it; 2000: collect).
    for batch, small_set in [(1, 0), (2, 0), (3, 0), (1, 2000), (500, 2000)]:
        monkeypatch.setattr(catalog.search, "CHECK_BATCH", batch)
        monkeypatch.setattr(catalog.search, "SMALL_SET", small_set)
        for case in cases:
            expected = _expected_ids(db, sort, **case)
            for strategy in ("auto", "walk", "collect"):
                assert _walk_all(db, strategy, sort=sort, **case) == expected, (
                    batch,
                    small_set,
                    strategy,
                    case,
                )


def test_a_word_in_most_products_fills_the_page_from_one_checked_batch(db: Session, storage) -> None:
    _strategy_catalog(db, storage)
    statements: list[str] = []
    event.listen(db.connection(), "before_cursor_execute", lambda c, cur, st, *a: statements.append(st))
    page = catalog.search_products(session=db, query="photo", limit=3)
    assert [c.id for c in page.items] == _expected_ids(db, "newest", query="photo")[:3]
    if db.get_bind().dialect.name == "sqlite":
        # No counting, no list of every match: one batch of the newest rows, checked by the index.
        assert not any("count(" in s or "listing_rows" in s for s in statements), statements
        assert any("json_each" in s for s in statements)


def test_an_unpublish_reason_with_control_characters_is_refused(db: Session, storage) -> None:
    from quantoxbay.services import admin

    seller, staff = create_user(db, Role.SELLER), create_user(db, Role.ADMIN)
    product = create_published_product(db, storage, seller)
    with pytest.raises(DomainError, match="The reason must be a single line"):
        admin.unpublish_product(session=db, actor=staff, product_id=product.id, reason="Spam\x1b[8m hidden")
    db.refresh(product)
    assert product.status == ProductStatus.PUBLISHED.value
    admin.unpublish_product(session=db, actor=staff, product_id=product.id, reason="Spam\r\n  again")
    db.refresh(product)
    assert product.unpublished_reason == "Spam again"


def test_priced_products_are_published_only_once_charges_are_enabled(db: Session, storage) -> None:  # type: ignore[no-untyped-def]
    """Each sale is a destination charge to the seller's connected account: without one that can
    take charges, a priced product (or a pay-what-you-want one) cannot go on sale; a free one can."""
    seller = create_user(db, Role.SELLER)
    free = create_published_product(db, storage, seller, title="Freebie", price_cents=0)
    assert free.status == ProductStatus.PUBLISHED.value
    priced = _draft(db, seller.id, title="Ebook", price_cents=900)
    tips = _draft(db, seller.id, title="Tips", price_cents=0, pay_what_you_want=True)
    for product in (priced, tips):
        _add_file(db, storage, product, seller.id)
        with pytest.raises(DomainError, match="Set up payouts before selling priced products"):
            catalog.publish_product(session=db, storage=storage, product_id=product.id, seller_id=seller.id)  # type: ignore[arg-type]
        db.refresh(product)
        assert product.status == ProductStatus.DRAFT.value
    # A free product that is on sale cannot be given a price either.
    with pytest.raises(DomainError, match="Set up payouts"):
        catalog.update_product(
            session=db,
            product_id=free.id,
            seller_id=seller.id,
            title="Freebie",
            price_cents=500,  # type: ignore[arg-type]
        )
    account = give_payouts_account(db, seller.id)
    account.charges_enabled = False  # Stripe paused it
    db.add(account)
    db.flush()
    with pytest.raises(DomainError, match="Set up payouts"):
        catalog.publish_product(session=db, storage=storage, product_id=priced.id, seller_id=seller.id)  # type: ignore[arg-type]
    account.charges_enabled = True
    db.add(account)
    db.flush()
    catalog.publish_product(session=db, storage=storage, product_id=priced.id, seller_id=seller.id)  # type: ignore[arg-type]
    db.refresh(priced)
    assert priced.status == ProductStatus.PUBLISHED.value
