"""Link previews and search engines (services/seo.py): head tags, escaping, sitemap, robots.txt."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from html.parser import HTMLParser

from PIL import Image
from sqlmodel import Session

from quantoxbay.models import Product, Role, User, utcnow
from quantoxbay.services import catalog, seo
from tests.factories import create_published_product, create_user

PUBLIC_URL = "https://shop.example"
HOSTILE = '</script><script>alert(1)</script>"><img src=x onerror=alert(2)>'


class HeadParser(HTMLParser):
    """The tags a crawler reads: <title>, <meta>, <link>, and each <script>'s type and text."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.meta: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.scripts: list[tuple[str, str]] = []
        self.elements: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.elements.append(tag)
        if tag == "meta":
            key = values.get("property") or values.get("name")
            if key:
                self.meta[key] = values.get("content", "")
        elif tag == "link":
            self.links[values.get("rel", "")] = values.get("href", "")
        elif tag in ("title", "script"):
            self._in = tag
            if tag == "script":
                self.scripts.append((values.get("type", ""), ""))

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data
        elif self._in == "script":
            kind, text = self.scripts[-1]
            self.scripts[-1] = (kind, text + data)


def parse(head: str) -> HeadParser:
    parser = HeadParser()
    parser.feed(head)
    parser.close()
    return parser


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 60, 90)).save(out, "PNG")
    return out.getvalue()


def _product(
    db: Session, storage, *, title: str = "Pixel brushes", price_cents: int = 1250, cover: bool = True
):
    seller = create_user(db, Role.SELLER)
    product = create_published_product(db, storage, seller, title=title, price_cents=price_cents)
    assert product.id is not None
    product.description = "A set of **64 brushes** for [Krita](https://krita.org).\n\n- soft\n- hard"
    if cover:
        catalog.set_cover_image(
            session=db, storage=storage, product_id=product.id, seller_id=seller.id, stream=io.BytesIO(_png())
        )
    db.flush()
    return seller, product


def test_product_page_tags_carry_title_price_absolute_cover_and_seller(db: Session, storage) -> None:
    seller, product = _product(db, storage)
    meta = seo.product_page_meta(session=db, product_id=product.id, public_url=PUBLIC_URL)  # type: ignore[arg-type]
    assert meta is not None
    head = parse(meta.head_html())
    seller_user = db.get(User, seller.id)
    assert seller_user is not None and seller_user.handle
    name = seo.seller_name(seller_user)
    url = f"{PUBLIC_URL}/products/{product.id}"

    assert head.title == "Pixel brushes · QuantoxBay"
    # Markdown becomes plain text: no asterisks, no link syntax.
    assert head.meta["description"] == "A set of 64 brushes for Krita. soft hard"
    assert head.links["canonical"] == url
    assert head.meta["og:type"] == "product"
    assert head.meta["og:title"] == "Pixel brushes"
    assert head.meta["og:url"] == url
    image = head.meta["og:image"]
    assert re.fullmatch(rf"{PUBLIC_URL}/api/covers/{product.id}/[0-9a-f]{{32}}/page\.webp", image)
    assert head.meta["twitter:card"] == "summary_large_image"
    assert head.meta["twitter:image"] == image
    assert head.meta["product:price:amount"] == "12.50"
    assert head.meta["product:price:currency"] == "USD"
    assert (head.meta["twitter:label1"], head.meta["twitter:data1"]) == ("Price", "$12.50")
    assert (head.meta["twitter:label2"], head.meta["twitter:data2"]) == ("Seller", name)

    [(kind, text)] = head.scripts
    assert kind == "application/ld+json"
    data = json.loads(text)
    assert data["@context"] == "https://schema.org" and data["@type"] == "Product"
    assert data["name"] == "Pixel brushes"
    assert data["image"] == [image]
    assert data["description"] == head.meta["description"]
    offer = data["offers"]
    assert offer["@type"] == "Offer"
    assert (offer["price"], offer["priceCurrency"]) == ("12.50", "USD")
    assert offer["availability"] == "https://schema.org/InStock"
    assert offer["url"] == url
    assert offer["seller"] == {
        "@type": "Person",
        "name": name,
        "url": f"{PUBLIC_URL}/sellers/{seller_user.handle}",
    }


def test_sale_price_free_and_pay_what_you_want_are_what_the_page_charges(db: Session, storage) -> None:
    _, product = _product(db, storage, cover=False)
    product.sale_price_cents = 800
    product.sale_starts_at = utcnow() - timedelta(hours=1)
    product.sale_ends_at = utcnow() + timedelta(days=2)
    meta = seo.product_meta(product, db.get(User, product.seller_id), public_url=PUBLIC_URL)  # type: ignore[arg-type]
    head = parse(meta.head_html())
    offer = json.loads(head.scripts[0][1])["offers"]
    assert (offer["price"], head.meta["twitter:data1"]) == ("8.00", "$8.00")
    assert offer["priceValidUntil"] == product.sale_ends_at.date().isoformat()
    # No cover: no image tags, the small card.
    assert "og:image" not in head.meta and head.meta["twitter:card"] == "summary"
    assert "image" not in json.loads(head.scripts[0][1])

    free = Product(id=1, seller_id=product.seller_id, title="Zine", price_cents=0, currency="eur")
    head = parse(seo.product_meta(free, db.get(User, product.seller_id), public_url=PUBLIC_URL).head_html())  # type: ignore[arg-type]
    assert (head.meta["product:price:amount"], head.meta["product:price:currency"]) == ("0.00", "EUR")
    assert head.meta["twitter:data1"] == "Free"
    # No description: a sentence naming the product and its seller instead.
    assert head.meta["description"].startswith("Zine by ")

    pwyw = Product(
        id=2, seller_id=product.seller_id, title="Tip jar", price_cents=300, pay_what_you_want=True
    )
    head = parse(seo.product_meta(pwyw, db.get(User, product.seller_id), public_url=PUBLIC_URL).head_html())  # type: ignore[arg-type]
    assert head.meta["twitter:data1"] == "$3.00+"
    assert json.loads(head.scripts[0][1])["offers"]["price"] == "3.00"


def test_hostile_title_stays_inert_in_every_tag(db: Session, storage) -> None:
    seller, product = _product(db, storage, title=HOSTILE)
    user = db.get(User, seller.id)
    assert user is not None
    user.display_name = HOSTILE
    product.description = HOSTILE
    db.flush()
    meta = seo.product_page_meta(session=db, product_id=product.id, public_url=PUBLIC_URL)  # type: ignore[arg-type]
    assert meta is not None
    html = meta.head_html()

    # The only elements are the ones we put there: one script (the data), no img, no second script.
    head = parse(html)
    assert head.elements.count("script") == 1 and "img" not in head.elements
    assert "<script>alert" not in html and "</script><script>" not in html
    assert html.count("</script>") == 1
    # ...and every value still reads back as the seller typed it.
    assert head.title == f"{HOSTILE} · QuantoxBay"
    assert head.meta["og:title"] == HOSTILE and head.meta["twitter:data2"] == HOSTILE
    [(_, text)] = head.scripts
    assert "<" not in text and ">" not in text and "&" not in text
    data = json.loads(text)
    assert data["name"] == HOSTILE and data["offers"]["seller"]["name"] == HOSTILE


def test_json_for_script_escapes_what_could_end_the_script() -> None:
    text = seo.json_for_script({"a": "</script><!-- & -->"})
    assert text == '{"a":"\\u003c/script\\u003e\\u003c!-- \\u0026 --\\u003e"}'
    assert json.loads(text) == {"a": "</script><!-- & -->"}


def test_plain_text_strips_markdown_and_cuts_at_a_word() -> None:
    assert seo.plain_text("# Title\n\nSome *bold* `code` & <b>raw</b>") == "Title Some bold code & <b>raw</b>"
    long = " ".join(["word"] * 100)
    cut = seo.plain_text(long)
    assert len(cut) <= seo.DESCRIPTION_LENGTH and cut.endswith("word…")


def test_unknown_unpublished_and_non_public_pages_have_no_tags(db: Session, storage) -> None:
    seller, product = _product(db, storage, cover=False)
    assert seo.product_page_meta(session=db, product_id=product.id + 1000, public_url=PUBLIC_URL) is None  # type: ignore[operator]
    catalog.unpublish_product(session=db, product_id=product.id, seller_id=seller.id)  # type: ignore[arg-type]
    assert seo.product_page_meta(session=db, product_id=product.id, public_url=PUBLIC_URL) is None  # type: ignore[arg-type]

    buyer = db.get(User, create_user(db, Role.BUYER).id)
    assert buyer is not None
    buyer.handle = "just-a-buyer"
    user = db.get(User, seller.id)
    assert user is not None and user.handle
    db.flush()
    assert seo.seller_page_meta(session=db, handle="just-a-buyer", public_url=PUBLIC_URL) is None
    assert seo.seller_page_meta(session=db, handle="nobody-here", public_url=PUBLIC_URL) is None

    meta = seo.seller_page_meta(session=db, handle=user.handle.upper(), public_url=PUBLIC_URL)
    assert meta is not None
    head = parse(meta.head_html())
    assert head.links["canonical"] == f"{PUBLIC_URL}/sellers/{user.handle}"
    assert head.meta["og:type"] == "profile" and head.meta["og:title"] == seo.seller_name(user)
    assert json.loads(head.scripts[0][1])["@type"] == "ProfilePage"

    user.disabled = True
    db.flush()
    assert seo.seller_page_meta(session=db, handle=user.handle, public_url=PUBLIC_URL) is None

    missing = parse(seo.not_found_meta().head_html())
    assert missing.meta["robots"] == "noindex" and "canonical" not in missing.links


SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def test_sitemap_lists_published_products_and_sellers_with_products(db: Session, storage) -> None:
    seller, product = _product(db, storage, cover=False)
    draft = catalog.create_product(session=db, seller_id=seller.id, title="Draft", price_cents=500)
    idle = db.get(User, create_user(db, Role.SELLER).id)  # a seller with nothing published
    user = db.get(User, seller.id)
    assert user is not None and idle is not None and user.handle and idle.handle
    db.flush()

    root = ET.fromstring(seo.sitemap_xml(session=db, public_url=PUBLIC_URL))  # noqa: S314 (our own output)
    entries = {
        url.findtext(f"{SITEMAP_NS}loc"): url.findtext(f"{SITEMAP_NS}lastmod")
        for url in root.iter(f"{SITEMAP_NS}url")
    }
    assert f"{PUBLIC_URL}/" in entries
    assert f"{PUBLIC_URL}/products/{product.id}" in entries
    assert f"{PUBLIC_URL}/products/{draft.id}" not in entries
    assert f"{PUBLIC_URL}/sellers/{user.handle}" in entries
    assert f"{PUBLIC_URL}/sellers/{idle.handle}" not in entries
    lastmod = entries[f"{PUBLIC_URL}/products/{product.id}"]
    assert lastmod and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lastmod)


def test_robots_txt_opens_the_store_and_closes_accounts_and_the_api() -> None:
    text = seo.robots_txt(public_url=PUBLIC_URL)
    lines = text.splitlines()
    assert lines[0] == "User-agent: *"
    for path in ("/seller", "/admin", "/library", "/checkout", "/api"):
        assert f"Disallow: {path}" in lines
    # /seller is a prefix of /sellers/: the public seller pages are allowed, before any Disallow.
    assert lines.index("Allow: /sellers/") < lines.index("Disallow: /seller")
    assert "Allow: /api/covers/" in lines
    assert lines[-1] == f"Sitemap: {PUBLIC_URL}/sitemap.xml"
