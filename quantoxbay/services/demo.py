"""Demo data for `make run` with the embedded defaults: three users, real small products.

The demo password is published (README, CLI): it opens the demo accounts only while the
server listens on a loopback address. Reachable from a network, the demo accounts get
random passwords instead, shown once (:func:`seed_demo` with ``passwords``,
:func:`replace_published_passwords`).
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Callable, Mapping
from typing import TypedDict

from sqlmodel import Session, col, delete, select

from quantoxbay.models import LoginTicket, Role, User
from quantoxbay.services import accounts, catalog
from quantoxbay.storage import Storage

DEMO_PASSWORD = "demo-password-123"  # noqa: S105  (printed for the demo on purpose)
DEMO_USERS = {
    Role.BUYER: "buyer@demo.quantoxbay.test",
    Role.SELLER: "seller@demo.quantoxbay.test",
    Role.ADMIN: "admin@demo.quantoxbay.test",
}


def _ebook() -> bytes:
    chapters = "\n\n".join(
        f"## Chapter {n}\n\nShip small, ship often. Lesson {n}: measure before you optimise."
        for n in range(1, 6)
    )
    return f"# The Indie Maker's Field Guide\n\n{chapters}\n".encode()


def _budget_template() -> bytes:
    rows = ["month,income_cents,expenses_cents,notes"] + [f"2026-{m:02d},0,0," for m in range(1, 13)]
    return ("\n".join(rows) + "\n").encode()


def _presets() -> bytes:
    presets = [
        {"name": "Golden Hour", "exposure": 0.35, "contrast": 12, "warmth": 18},
        {"name": "Nordic Fog", "exposure": -0.1, "contrast": -8, "warmth": -12},
        {"name": "Film 400", "exposure": 0.05, "contrast": 6, "grain": 22},
    ]
    return json.dumps({"version": 1, "presets": presets}, indent=2).encode()


def _cover(top: tuple[int, int, int], bottom: tuple[int, int, int], glyph: str) -> bytes:
    """A simple gradient cover with a large glyph, drawn with Pillow (no downloads)."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = 1200, 800
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / (height - 1)
        draw.line(
            [(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        )
    font = ImageFont.load_default(size=260)
    box = draw.textbbox((0, 0), glyph, font=font)
    position = ((width - (box[2] - box[0])) / 2, (height - (box[3] - box[1])) / 2 - box[1])
    draw.text(position, glyph, font=font, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


RGB = tuple[int, int, int]


class DemoProduct(TypedDict):
    title: str
    description: str
    price_cents: int
    category: str
    tags: list[str]
    #: (file name, content maker, content type)
    file: tuple[str, Callable[[], bytes], str]
    #: (top colour, bottom colour, glyph) of the generated cover
    cover: tuple[RGB, RGB, str]


DEMO_PRODUCTS: list[DemoProduct] = [
    {
        "title": "The Indie Maker's Field Guide",
        "description": "A short, practical e-book on shipping your first digital product.\n\n"
        "* 5 chapters\n* Markdown, reads anywhere",
        "price_cents": 1200,
        "category": "ebooks",
        "tags": ["ebook", "business"],
        "file": ("indie-makers-field-guide.md", _ebook, "text/markdown"),
        "cover": ((91, 33, 182), (236, 72, 153), "Aa"),
    },
    {
        "title": "Personal Budget Spreadsheet",
        "description": "A clean monthly budget template that opens in any spreadsheet app.",
        "price_cents": 500,
        "category": "templates",
        "tags": ["template", "finance"],
        "file": ("budget-template.csv", _budget_template, "text/csv"),
        "cover": ((4, 120, 87), (16, 185, 129), "$"),
    },
    {
        "title": "Cinematic Photo Presets",
        "description": "Three hand-tuned colour presets for warm, cool and film looks.",
        "price_cents": 1900,
        "category": "presets",
        "tags": ["photography", "presets"],
        "file": ("cinematic-presets.json", _presets, "application/json"),
        "cover": ((194, 65, 12), (251, 191, 36), "FX"),
    },
]


def random_passwords() -> dict[str, str]:
    """A fresh random password for each demo account, by e-mail."""
    return {email: secrets.token_urlsafe(12) for email in DEMO_USERS.values()}


def seed_demo(
    *,
    session: Session,
    storage: Storage,
    max_upload_bytes: int,
    passwords: Mapping[str, str] | None = None,
    onboard_seller: Callable[[int], None] | None = None,
) -> bool:
    """Create the demo users and products once; returns False when they already exist.

    ``passwords`` (by e-mail) replaces the published :data:`DEMO_PASSWORD`, for a server
    reachable from a network. ``onboard_seller`` gets the demo seller's payouts set up (the
    embedded Stripe's test onboarding) so the priced demo products can be published; without it
    they stay drafts until the seller sets up payouts.
    """
    if session.exec(select(User.id).where(User.email == DEMO_USERS[Role.SELLER])).first() is not None:
        return False
    users = {
        role: accounts.create_user(
            session=session,
            email=email,
            password=passwords[email] if passwords else DEMO_PASSWORD,
            role=role,
            display_name=f"Demo {role.value.title()}",
        )
        for role, email in DEMO_USERS.items()
    }
    seller_id = users[Role.SELLER].id
    if onboard_seller is not None:
        onboard_seller(seller_id)
    for spec in DEMO_PRODUCTS:
        product = catalog.create_product(
            session=session,
            seller_id=seller_id,
            title=spec["title"],
            description=spec["description"],
            price_cents=spec["price_cents"],
            category=spec["category"],
            tags=spec["tags"],
        )
        filename, make, content_type = spec["file"]
        assert product.id is not None
        catalog.add_product_file(
            session=session,
            storage=storage,
            product_id=product.id,
            seller_id=seller_id,
            filename=filename,
            stream=io.BytesIO(make()),
            content_type=content_type,
            max_bytes=max_upload_bytes,
        )
        top, bottom, glyph = spec["cover"]
        catalog.set_cover_image(
            session=session,
            storage=storage,
            product_id=product.id,
            seller_id=seller_id,
            stream=io.BytesIO(_cover(top, bottom, glyph)),
        )
        if onboard_seller is not None or spec["price_cents"] == 0:
            catalog.publish_product(
                session=session, storage=storage, product_id=product.id, seller_id=seller_id
            )
    return True


def accounts_with_published_password(*, session: Session) -> list[User]:
    """The demo accounts the published :data:`DEMO_PASSWORD` still opens."""
    users = session.exec(select(User).where(col(User.email).in_(list(DEMO_USERS.values())))).all()
    return [u for u in users if accounts.verify_password(DEMO_PASSWORD, u.password_hash)]


def replace_published_passwords(*, session: Session) -> dict[str, str]:
    """Give each demo account the published password still opens a random one, and end its
    sessions (anyone may have logged in with the published password).

    Returns:
        The new passwords by e-mail: the only time they can be shown.
    """
    replaced: dict[str, str] = {}
    for user in accounts_with_published_password(session=session):
        assert user.id is not None
        password = secrets.token_urlsafe(12)
        user.password_hash = accounts.hash_password(password)
        session.add(user)
        accounts.end_all_sessions(session=session, user_id=user.id)
        session.execute(delete(LoginTicket).where(col(LoginTicket.user_id) == user.id))
        replaced[user.email] = password
    session.flush()
    return replaced
