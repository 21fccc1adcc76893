"""What link previews and search engines read: per-page head tags, the sitemap and robots.txt.

The product and seller pages are one static shell in the browser; the server puts each page's
own ``<title>``, meta description, Open Graph and Twitter card tags and schema.org JSON-LD into
that shell's ``<head>`` (``api/page_meta.py``), so a crawler that runs no JavaScript sees them.

Titles, descriptions and names are seller input: every value goes into an attribute or text
through :func:`html.escape`, and into the JSON-LD through :func:`json_for_script`, which escapes
``<``, ``>`` and ``&`` so no value can close the ``<script>`` element.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

import nh3
from sqlmodel import Session, col, func, select

from quantoxbay import routes
from quantoxbay.models import Product, ProductStatus, Role, User
from quantoxbay.routes import API_COVERS
from quantoxbay.services.catalog.views import cover_url, render_description
from quantoxbay.services.money import amount_text, format_money
from quantoxbay.services.pricing import current_price_cents, sale_is_running

SITE_NAME = "QuantoxBay"
#: Search engines read a meta description up to about this many characters.
DESCRIPTION_LENGTH = 160
#: The sitemap protocol's limit of URLs in one file.
SITEMAP_MAX_URLS = 50_000
#: Paths crawlers are asked to leave alone: accounts, dashboards, payment and API endpoints.
ROBOTS_DISALLOWED = ("/seller", "/admin", "/library", "/checkout", "/api", "/stripe-local", "/_")
#: Exceptions to the above: public seller pages (``/seller`` is a prefix of ``/sellers/``) and
#: the covers that previews and image search show.
ROBOTS_ALLOWED = ("/sellers/", API_COVERS + "/")

_JSON_IN_SCRIPT = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class PageMeta:
    """One page's head tags, as values; :meth:`head_html` renders them escaped."""

    title: str  # the <title>, site name included
    description: str
    canonical_url: str
    # Open Graph ``property`` tags and Twitter card ``name`` tags, in order.
    properties: list[tuple[str, str]] = field(default_factory=list)
    names: list[tuple[str, str]] = field(default_factory=list)
    json_ld: dict[str, Any] | None = None
    noindex: bool = False

    def head_html(self) -> str:
        """The tags, each value escaped for where it goes."""
        parts = [f"<title>{html.escape(self.title)}</title>"]
        parts.append(_meta("name", "description", self.description))
        if self.noindex:
            parts.append(_meta("name", "robots", "noindex"))
        if self.canonical_url:
            parts.append(f'<link rel="canonical" href="{html.escape(self.canonical_url)}"/>')
        parts.extend(_meta("property", key, value) for key, value in self.properties)
        parts.extend(_meta("name", key, value) for key, value in self.names)
        if self.json_ld is not None:
            parts.append(f'<script type="application/ld+json">{json_for_script(self.json_ld)}</script>')
        return "".join(parts)


def _meta(attribute: str, key: str, value: str) -> str:
    return f'<meta {attribute}="{html.escape(key)}" content="{html.escape(value)}"/>'


def json_for_script(data: dict[str, Any]) -> str:
    """JSON safe inside ``<script>``: ``<``, ``>``, ``&`` as ``\\u003c``... (still the same JSON)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_JSON_IN_SCRIPT)


def plain_text(markdown: str, limit: int = DESCRIPTION_LENGTH) -> str:
    """A seller's markdown as one line of plain text, cut at a word near ``limit`` with "…"."""
    text = html.unescape(nh3.clean(render_description(markdown), tags=set()))
    text = _WHITESPACE.sub(" ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:-") + "…"


def absolute(public_url: str, path: str) -> str:
    return public_url.rstrip("/") + path


def seller_name(user: User) -> str:
    return user.display_name or user.email.split("@")[0]


def seller_path(handle: str) -> str:
    return routes.SELLER_PAGE.replace("[handle]", quote(handle, safe=""))


def price_label(price_cents: int, currency: str, pay_what_you_want: bool) -> str:
    """What a preview shows: "$12.50", "Free", "$3.00+", "Name your price"."""
    if pay_what_you_want:
        return "Name your price" if price_cents == 0 else f"{format_money(price_cents, currency)}+"
    return format_money(price_cents, currency)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- product pages ------------------------------------------------------------------


def product_meta(product: Product, seller: User, *, public_url: str) -> PageMeta:
    """The head tags of a published product's page."""
    assert product.id is not None
    name = seller_name(seller)
    price = current_price_cents(product)
    currency = product.currency.upper()
    label = price_label(price, product.currency, product.pay_what_you_want)
    url = absolute(public_url, routes.product_path(product.id))
    summary = plain_text(product.description) or f"{product.title} by {name} on {SITE_NAME}."
    cover = cover_url(None, product.cover_key, "page")
    image = absolute(public_url, cover) if cover else None

    properties = [
        ("og:type", "product"),
        ("og:site_name", SITE_NAME),
        ("og:title", product.title),
        ("og:description", summary),
        ("og:url", url),
    ]
    if image:
        properties += [("og:image", image), ("og:image:type", "image/webp"), ("og:image:alt", product.title)]
    properties += [("product:price:amount", amount_text(price)), ("product:price:currency", currency)]
    names = [
        ("author", name),
        ("twitter:card", "summary_large_image" if image else "summary"),
        ("twitter:title", product.title),
        ("twitter:description", summary),
    ]
    if image:
        names += [("twitter:image", image), ("twitter:image:alt", product.title)]
    names += [
        ("twitter:label1", "Price"),
        ("twitter:data1", label),
        ("twitter:label2", "Seller"),
        ("twitter:data2", name),
    ]

    seller_ld: dict[str, Any] = {"@type": "Person", "name": name}
    if seller.handle:
        seller_ld["url"] = absolute(public_url, seller_path(seller.handle))
    offer: dict[str, Any] = {
        "@type": "Offer",
        "url": url,
        "price": amount_text(price),
        "priceCurrency": currency,
        "availability": "https://schema.org/InStock",
        "seller": seller_ld,
    }
    if sale_is_running(product) and product.sale_ends_at is not None:
        offer["priceValidUntil"] = product.sale_ends_at.date().isoformat()
    json_ld: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": product.title,
        "description": summary,
        "url": url,
        "sku": str(product.id),
        "brand": {"@type": "Brand", "name": name},
        "offers": offer,
    }
    if image:
        json_ld["image"] = [image]
    if product.category:
        json_ld["category"] = product.category
    return PageMeta(
        title=f"{product.title} · {SITE_NAME}",
        description=summary,
        canonical_url=url,
        properties=properties,
        names=names,
        json_ld=json_ld,
    )


def product_page_meta(*, session: Session, product_id: int, public_url: str) -> PageMeta | None:
    """A published product's head tags (one query by primary key); None for any other id."""
    row = session.exec(
        select(Product, User)
        .join(User, col(User.id) == col(Product.seller_id))
        .where(Product.id == product_id, Product.status == ProductStatus.PUBLISHED.value)
    ).first()
    if row is None:
        return None
    product, seller = row
    return product_meta(product, seller, public_url=public_url)


# --- seller pages -------------------------------------------------------------------

_PUBLIC_ROLES = (Role.SELLER.value, Role.ADMIN.value)


def seller_meta(seller: User, *, public_url: str) -> PageMeta:
    """The head tags of a seller's public page."""
    assert seller.handle
    name = seller_name(seller)
    url = absolute(public_url, seller_path(seller.handle))
    summary = f"Digital products by {name} on {SITE_NAME}."
    return PageMeta(
        title=f"{name} · {SITE_NAME}",
        description=summary,
        canonical_url=url,
        properties=[
            ("og:type", "profile"),
            ("og:site_name", SITE_NAME),
            ("og:title", name),
            ("og:description", summary),
            ("og:url", url),
            ("profile:username", seller.handle),
        ],
        names=[("twitter:card", "summary"), ("twitter:title", name), ("twitter:description", summary)],
        json_ld={
            "@context": "https://schema.org",
            "@type": "ProfilePage",
            "url": url,
            "mainEntity": {"@type": "Person", "name": name, "alternateName": seller.handle, "url": url},
        },
    )


def seller_page_meta(*, session: Session, handle: str, public_url: str) -> PageMeta | None:
    """A seller's head tags (one query on the unique handle); None for no such public seller."""
    seller = session.exec(
        select(User).where(
            User.handle == handle.strip().lower(),
            col(User.disabled).is_(False),
            col(User.role).in_(_PUBLIC_ROLES),
        )
    ).first()
    if seller is None:
        return None
    return seller_meta(seller, public_url=public_url)


def not_found_meta() -> PageMeta:
    """An unknown or unpublished page: a plain title and ``noindex``."""
    return PageMeta(
        title=f"Not found · {SITE_NAME}",
        description="This page does not exist or is no longer available.",
        canonical_url="",
        noindex=True,
    )


# --- sitemap and robots.txt -----------------------------------------------------------


def sitemap_xml(*, session: Session, public_url: str) -> str:
    """The storefront, every published product and every seller page with one, with lastmod.

    Capped at SITEMAP_MAX_URLS (the protocol's limit for one file), the newest first.
    """
    products = session.exec(
        select(Product.id, Product.updated_at)
        .where(Product.status == ProductStatus.PUBLISHED.value)
        .order_by(col(Product.id).desc())
        .limit(SITEMAP_MAX_URLS - 1)
    ).all()
    sellers = session.exec(
        select(User.handle, func.max(Product.updated_at))
        .join(Product, col(Product.seller_id) == col(User.id))
        .where(
            Product.status == ProductStatus.PUBLISHED.value,
            col(User.handle).is_not(None),
            col(User.disabled).is_(False),
            col(User.role).in_(_PUBLIC_ROLES),
        )
        .group_by(User.handle)
        .order_by(func.max(Product.updated_at).desc())
        .limit(max(0, SITEMAP_MAX_URLS - 1 - len(products)))
    ).all()
    newest = max((updated for _, updated in products), default=None)
    entries: list[tuple[str, datetime | None]] = [(absolute(public_url, routes.STOREFRONT), newest)]
    entries += [(absolute(public_url, routes.product_path(pid)), updated) for pid, updated in products if pid]
    entries += [(absolute(public_url, seller_path(handle)), updated) for handle, updated in sellers if handle]
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
    ]
    for loc, lastmod in entries:
        modified = f"<lastmod>{_iso(lastmod)}</lastmod>" if lastmod else ""
        lines.append(f"<url><loc>{xml_escape(loc)}</loc>{modified}</url>")
    lines.append("</urlset>")
    return "\n".join(lines) + "\n"


def robots_txt(*, public_url: str) -> str:
    """The store open to crawlers; accounts, dashboards, checkout and the API not; the sitemap."""
    lines = ["User-agent: *"]
    # Allow lines first: crawlers that take the first match and those that take the longest agree.
    lines += [f"Allow: {path}" for path in ROBOTS_ALLOWED]
    lines += [f"Disallow: {path}" for path in ROBOTS_DISALLOWED]
    lines += ["", f"Sitemap: {absolute(public_url, '/sitemap.xml')}"]
    return "\n".join(lines) + "\n"
