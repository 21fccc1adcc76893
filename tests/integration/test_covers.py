"""GET /api/covers/...: published products' covers only, cacheable for a year."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from quantoxbay import routes
from quantoxbay.api import covers
from quantoxbay.db import session_scope
from quantoxbay.models import Role
from quantoxbay.services import catalog
from tests.factories import create_published_product, create_user


@pytest.fixture
def client(engine: Engine, storage, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(covers, "session_scope", lambda: session_scope(engine))
    monkeypatch.setattr(covers, "get_storage", lambda: storage)
    # The same route line quantoxbay/api/app.py carries.
    app = Starlette(routes=[Route(routes.API_COVERS + "/{key:path}", covers.cover, methods=["GET", "HEAD"])])
    return TestClient(app, follow_redirects=False)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


def test_published_cover_is_served_with_long_cache_and_others_are_404(
    client: TestClient, engine: Engine, storage
) -> None:
    with Session(engine) as s:
        seller = create_user(s, Role.SELLER)
        product = create_published_product(s, storage, seller, title="Covered")
        catalog.set_cover_image(
            session=s,
            storage=storage,
            product_id=product.id,
            seller_id=seller.id,
            stream=io.BytesIO(_png()),
        )
        s.commit()
        card_url = catalog.get_published_product(session=s, product_id=product.id, storage=storage).cover_url  # type: ignore[arg-type]
        old_key = product.cover_key
    assert card_url and card_url.startswith(routes.API_COVERS + "/")

    response = client.get(card_url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    assert (
        "immutable" in response.headers["cache-control"]
        and "max-age=31536000" in response.headers["cache-control"]
    )
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "WEBP" and image.size == (480, 360)
    assert client.get(card_url.replace("card.webp", "page.webp")).status_code == 200

    # Made-up or tricky paths, another product's id with this upload, and unknown variants: 404.
    upload = old_key.removeprefix("covers/").split("/", 1)[1]  # type: ignore[union-attr]
    for path in (
        f"{product.id + 1000}/{upload}/card.webp",
        f"{product.id}/{'0' * 32}/card.webp",
        f"{product.id}/{upload}/original.webp",
        f"{product.id}/{upload}/../../../etc/passwd",
        "..%2F..%2Fsecret",
    ):
        missing = client.get(f"{routes.API_COVERS}/{path}")
        assert missing.status_code == 404, path
        # (httpx may resolve the dot segments itself: then the router answers, without the header)
        assert missing.headers.get("cache-control", "no-store") == "no-store", path

    # Unpublished: the cover is no longer public.
    with Session(engine) as s:
        catalog.unpublish_product(session=s, product_id=product.id, seller_id=seller.id)  # type: ignore[arg-type]
        s.commit()
    assert client.get(card_url).status_code == 404
