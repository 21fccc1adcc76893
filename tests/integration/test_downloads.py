"""GET /api/downloads/{token} over HTTP: the owner gets the bytes (whole and by Range); expired,
foreign, refunded, disputed and limit-exhausted links are refused; double clicks count once, and
so does a Range continuation on the link that started the download (only there, only soon)."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from quantoxbay import routes
from quantoxbay.api import build_api
from quantoxbay.models import DownloadGrant, DownloadLog, Order, Product, ProductFile, Role
from quantoxbay.services import accounts, downloads, fulfillment, refunds
from quantoxbay.settings import get_settings
from quantoxbay.storage import get_storage
from tests.factories import create_published_product, create_user
from tests.stripe_payloads import checkout_session

CONTENT = bytes(range(256)) * 40  # 10 KiB


@pytest.fixture
def sale(app_engine: Engine):
    with Session(app_engine, expire_on_commit=False) as s:
        seller, buyer, other = create_user(s, Role.SELLER), create_user(s, Role.BUYER), create_user(s)
        product = create_published_product(s, get_storage(), seller, content=CONTENT)
        cs = checkout_session(s, buyer_id=buyer.id, product_id=product.id)
        order_id = fulfillment.fulfill_checkout(session=s, checkout_session=cs).order_id
        file_id = s.exec(select(ProductFile.id).where(ProductFile.product_id == product.id)).one()
        cookies = {u.id: accounts.start_session(session=s, user_id=u.id) for u in (buyer, other)}
        s.commit()
    return SimpleNamespace(
        seller=seller,
        buyer=buyer,
        other=other,
        product_id=product.id,
        order_id=order_id,
        file_id=file_id,
        cookies=cookies,
    )


def _url(sale, user_id: int | None = None) -> str:
    return downloads.download_url(
        secret=get_settings().app_secret,
        user_id=user_id or sale.buyer.id,
        order_id=sale.order_id,
        file_id=sale.file_id,
    )


def _client(sale, user_id: int | None) -> TestClient:
    client = TestClient(build_api())
    if user_id is not None:
        client.cookies.set(routes.SESSION_COOKIE, sale.cookies[user_id])
    return client


def test_owner_downloads_the_whole_file_and_ranges(sale) -> None:
    client = _client(sale, sale.buyer.id)
    whole = client.get(_url(sale))
    assert whole.status_code == 200 and whole.content == CONTENT
    assert whole.headers["accept-ranges"] == "bytes" and "attachment" in whole.headers["content-disposition"]
    part = client.get(_url(sale), headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == CONTENT[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(CONTENT)}"
    tail = client.get(_url(sale), headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == CONTENT[-10:]
    assert client.get(_url(sale), headers={"Range": "bytes=99999-"}).status_code == 416


def test_foreign_anonymous_tampered_and_expired_links_are_refused(sale, monkeypatch) -> None:
    assert _client(sale, sale.other.id).get(_url(sale)).status_code == 403  # someone else's link
    assert _client(sale, sale.other.id).get(_url(sale, sale.other.id)).status_code == 404  # not their order
    assert _client(sale, None).get(_url(sale)).status_code == 403
    assert _client(sale, sale.buyer.id).get(_url(sale) + "x").status_code == 404
    monkeypatch.setattr(get_settings(), "download_link_ttl_seconds", -1)
    client = _client(sale, sale.buyer.id)
    expired = client.get(_url(sale))
    assert expired.status_code == 410 and "expired" in expired.json()["error"]
    browser = client.get(_url(sale), headers={"Accept": "text/html"}, follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"] == "/library?expired=1"


def test_refunded_and_disputed_orders_stop_links_already_handed_out(sale, app_engine: Engine) -> None:
    client = _client(sale, sale.buyer.id)
    url = _url(sale)
    assert client.get(url).status_code == 200
    with Session(app_engine) as s:
        pi = s.get(Order, sale.order_id).stripe_payment_intent_id
        refunds.on_dispute_created(session=s, dispute={"payment_intent": pi, "status": "needs_response"})
        s.commit()
    refused = client.get(url)
    assert refused.status_code == 403 and "withdrawn" in refused.json()["error"]
    with Session(app_engine) as s:
        refunds.on_dispute_closed(session=s, dispute={"payment_intent": pi, "status": "won"})
        s.commit()
    assert client.get(url).status_code == 200
    with Session(app_engine) as s:
        refunds.on_charge_refunded(session=s, charge={"payment_intent": pi, "amount_refunded": 999})
        s.commit()
    assert client.get(url).status_code == 403


def test_limit_counts_a_double_click_and_range_continuation_once(sale, app_engine: Engine) -> None:
    with Session(app_engine) as s:
        product = s.get(Product, sale.product_id)
        product.download_limit = 1
        s.add(product)
        s.commit()
    client = _client(sale, sale.buyer.id)
    url = _url(sale)
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 200  # the double click
    assert client.get(url, headers={"Range": "bytes=5000-"}).status_code == 206
    with Session(app_engine) as s:
        grant = s.exec(select(DownloadGrant).where(DownloadGrant.order_id == sale.order_id)).one()
        logs = s.exec(select(DownloadLog).where(DownloadLog.order_id == sale.order_id)).all()
        assert grant.downloads_used == 1
        assert [log.counted for log in logs] == [True, False, False]
        assert all(log.ip == "testclient" and log.user_id == sale.buyer.id for log in logs)
        for log in logs:  # a day later: a new download, over the limit
            log.created_at = log.created_at.replace(year=2000)
            s.add(log)
        s.commit()
    refused = client.get(url)
    assert refused.status_code == 403 and "used all 1 downloads" in refused.json()["error"]
    with Session(app_engine) as s:
        downloads.reset_download_limit(session=s, actor=sale.seller, order_id=sale.order_id)
        s.commit()
    assert client.get(url).status_code == 200


def _set_limit(app_engine: Engine, sale, limit: int | None) -> None:
    with Session(app_engine) as s:
        product = s.get(Product, sale.product_id)
        product.download_limit = limit
        s.add(product)
        s.commit()


def _age_logs(app_engine: Engine, sale, by: timedelta) -> None:
    with Session(app_engine) as s:
        for log in s.exec(select(DownloadLog).where(DownloadLog.order_id == sale.order_id)).all():
            log.created_at = log.created_at - by
            s.add(log)
        s.commit()


def _downloads_used(app_engine: Engine, sale) -> int:
    with Session(app_engine) as s:
        return s.exec(
            select(DownloadGrant.downloads_used).where(DownloadGrant.order_id == sale.order_id)
        ).one()


def _other_link(sale, monkeypatch: pytest.MonkeyPatch) -> str:
    """A second link for the same user, order and file: signed a few seconds earlier."""
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 5)
        url = _url(sale)
    assert url != _url(sale)
    return url


def test_a_bare_range_request_after_the_limit_is_used_is_refused(
    sale, app_engine: Engine, monkeypatch
) -> None:
    _set_limit(app_engine, sale, 1)
    client = _client(sale, sale.buyer.id)
    url = _url(sale)
    assert client.get(url).status_code == 200
    _age_logs(app_engine, sale, timedelta(days=1))
    for link in (url, _other_link(sale, monkeypatch)):
        refused = client.get(link, headers={"Range": "bytes=1-"})
        assert refused.status_code == 403 and "used all 1 downloads" in refused.json()["error"]
    assert _downloads_used(app_engine, sale) == 1


def test_a_range_continuation_on_the_same_link_counts_once(sale, app_engine: Engine) -> None:
    _set_limit(app_engine, sale, 1)
    client = _client(sale, sale.buyer.id)
    url = _url(sale)
    first = client.get(url, headers={"Range": "bytes=0-4095"})
    assert first.status_code == 206 and first.content == CONTENT[:4096]
    _age_logs(app_engine, sale, timedelta(minutes=5))  # past the double-click window, inside this one
    rest = client.get(url, headers={"Range": "bytes=4096-"})
    assert rest.status_code == 206 and rest.content == CONTENT[4096:]
    assert _downloads_used(app_engine, sale) == 1
    with Session(app_engine) as s:
        logs = s.exec(select(DownloadLog).where(DownloadLog.order_id == sale.order_id)).all()
        assert [(log.range_start, log.counted) for log in logs] == [(0, True), (4096, False)]
        assert logs[0].link_id and logs[0].link_id == logs[1].link_id and logs[0].link_id not in url


def test_a_range_request_on_another_link_or_after_the_window_counts(
    sale, app_engine: Engine, monkeypatch
) -> None:
    _set_limit(app_engine, sale, 3)
    client = _client(sale, sale.buyer.id)
    url, other = _url(sale), _other_link(sale, monkeypatch)
    assert client.get(url).status_code == 200
    assert _downloads_used(app_engine, sale) == 1
    assert client.get(other, headers={"Range": "bytes=100-"}).status_code == 206  # another link: counts
    assert _downloads_used(app_engine, sale) == 2
    _age_logs(app_engine, sale, downloads.CONTINUATION_WINDOW + timedelta(minutes=1))
    assert client.get(url, headers={"Range": "bytes=100-"}).status_code == 206  # too late: counts
    assert _downloads_used(app_engine, sale) == 3
    # The limit is used: a continuation on another link is refused, one on the last link passes.
    refused = client.get(other, headers={"Range": "bytes=200-"})
    assert refused.status_code == 403 and "used all 3 downloads" in refused.json()["error"]
    assert client.get(url, headers={"Range": "bytes=200-"}).status_code == 206
    assert _downloads_used(app_engine, sale) == 3
