"""The embedded Stripe answers as Stripe does where a developer would notice after switching:
Prices, ``Stripe-Version``, ``ui_mode``, refused input (``expand``, metadata keys,
Idempotency-Key length, currencies) and ``data.previous_attributes``."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe

from quantoxbay.stripe_local import API_VERSION
from tests.integration import test_stripe_local
from tests.integration.test_stripe_local import Env, session_params, wait_for
from tests.stripe_keys import bearer

env = test_stripe_local.env  # the module-scoped embedded Stripe (a fixture of its own here)

pytestmark = pytest.mark.timeout(60)


def make_price(env: Env, **overrides: Any) -> stripe.Price:
    params: dict[str, Any] = {
        "currency": "usd",
        "unit_amount": 2000,
        "product_data": {"name": "Stubborn Attachments"},
    }
    params.update(overrides)
    return env.client.v1.prices.create(params=params)


# -- prices -------------------------------------------------------------------


def test_price_with_inline_product_is_retrievable_with_its_product(env: Env) -> None:
    price = make_price(env, lookup_key=f"sample-{time.time_ns()}", nickname="Book", metadata={"a": "1"})
    assert price.id.startswith("price_") and price.object == "price"
    assert price.type == "one_time" and price.billing_scheme == "per_unit"
    assert price.unit_amount == 2000 and str(price.unit_amount_decimal) == "2000"
    assert price.active is True and price.recurring is None and price.tiers_mode is None
    product = env.client.v1.products.retrieve(str(price.product))
    assert product.name == "Stubborn Attachments" and product.active is True
    again = env.client.v1.prices.retrieve(price.id, params={"expand": ["product"]})
    assert isinstance(again.product, stripe.Product) and again.product.id == product.id
    assert again.lookup_key == price.lookup_key and again.nickname == "Book"


def test_price_for_a_stored_product_and_update(env: Env) -> None:
    product = env.client.v1.products.create(params={"name": "Course"})
    price = env.client.v1.prices.create(params={"currency": "eur", "unit_amount": 900, "product": product.id})
    assert price.product == product.id and price.currency == "eur"
    updated = env.client.v1.prices.update(
        price.id, params={"active": False, "nickname": "Old", "metadata": {"k": "v"}}
    )
    assert updated.active is False and updated.nickname == "Old" and updated.metadata.to_dict() == {"k": "v"}
    events = wait_for(lambda: env.receiver.of(price.id, "price.updated"))
    assert events[-1]["data"]["previous_attributes"] == {
        "active": True,
        "nickname": None,
        "metadata": {"k": None},
    }


def test_price_refusals(env: Env) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.prices.retrieve("price_missing")
    assert info.value.http_status == 404 and info.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.prices.create(params={"currency": "usd", "unit_amount": 100})
    assert info.value.param == "product"
    with pytest.raises(stripe.InvalidRequestError) as info:
        make_price(env, currency="xyz")
    assert info.value.param == "currency" and "Invalid currency: xyz" in str(info.value.user_message)
    with pytest.raises(stripe.InvalidRequestError) as info:
        make_price(env, recurring={"interval": "month"})
    assert info.value.param == "recurring"
    key = f"taken-{time.time_ns()}"
    first = make_price(env, lookup_key=key)
    with pytest.raises(stripe.InvalidRequestError) as info:
        make_price(env, lookup_key=key)
    assert info.value.param == "lookup_key"
    second = make_price(env, lookup_key=key, transfer_lookup_key=True)
    assert second.lookup_key == key
    assert env.client.v1.prices.retrieve(first.id).lookup_key is None


def test_list_prices_filters(env: Env) -> None:
    product = env.client.v1.products.create(params={"name": "Filtered"})
    key = f"lk-{time.time_ns()}"
    active = env.client.v1.prices.create(
        params={"currency": "usd", "unit_amount": 100, "product": product.id, "lookup_key": key}
    )
    inactive = env.client.v1.prices.create(
        params={"currency": "usd", "unit_amount": 200, "product": product.id, "active": False}
    )
    by_product = env.client.v1.prices.list(params={"product": product.id})
    assert [p.id for p in by_product.data] == [inactive.id, active.id]
    assert [p.id for p in env.client.v1.prices.list(params={"product": product.id, "active": True}).data] == [
        active.id
    ]
    assert [p.id for p in env.client.v1.prices.list(params={"lookup_keys": [key]}).data] == [active.id]
    expanded = env.client.v1.prices.list(params={"lookup_keys": [key], "expand": ["data.product"]})
    assert isinstance(expanded.data[0].product, stripe.Product)
    products = env.client.v1.products.list(params={"ids": [product.id]})
    assert [p.id for p in products.data] == [product.id]


def test_session_with_a_price_id(env: Env) -> None:
    price = make_price(env, unit_amount=1500)
    session = env.client.v1.checkout.sessions.create(
        params=session_params(line_items=[{"price": price.id, "quantity": 2}])
    )
    assert session.amount_total == 3000 and session.currency == "usd"
    items = env.client.v1.checkout.sessions.line_items.list(
        session.id, params={"expand": ["data.price.product"]}
    )
    assert items.data[0].price.id == price.id and items.data[0].price.active is True
    assert items.data[0].price.product.id == price.product
    env.client.v1.prices.update(price.id, params={"active": False})
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.checkout.sessions.create(
            params=session_params(line_items=[{"price": price.id, "quantity": 1}])
        )
    assert info.value.param == "line_items[0][price]"
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.checkout.sessions.create(
            params=session_params(line_items=[{"price": "price_nope", "quantity": 1}])
        )
    assert info.value.http_status == 404 and info.value.param == "line_items[0][price]"


def test_inline_line_item_product_is_retrievable(env: Env) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    items = env.client.v1.checkout.sessions.line_items.list(session.id)
    product = env.client.v1.products.retrieve(str(items.data[0].price.product))
    assert product.name == "Python Ebook"


def test_a_refused_session_keeps_no_inline_product(env: Env) -> None:
    before = {p.id for p in env.client.v1.products.list(params={"limit": 100}).data}
    with pytest.raises(stripe.InvalidRequestError):
        env.client.v1.checkout.sessions.create(params=session_params(expires_at=1))
    after = {p.id for p in env.client.v1.products.list(params={"limit": 100}).data}
    assert after == before


# -- Stripe-Version -------------------------------------------------------------


def test_stripe_version_header(env: Env) -> None:
    url = f"{env.api_base}/v1/events?limit=1"
    pinned = env.http.get(url, headers={**bearer(), "Stripe-Version": API_VERSION})
    assert pinned.status_code == 200 and pinned.headers["Stripe-Version"] == API_VERSION
    for bad in ("2019-2-19", "2022-08-02", "banana", "2099-01-01.zebra", "2030-01-01"):
        response = env.http.get(url, headers={**bearer(), "Stripe-Version": bad})
        assert response.status_code == 400, bad
        assert response.json()["error"]["message"] == f"Invalid Stripe API version: {bad}"
    older = env.http.get(url, headers={**bearer(), "Stripe-Version": "2020-08-27"})
    assert older.status_code == 200
    assert older.headers["Stripe-Version"] == API_VERSION
    assert older.headers["Stripe-Version-Served-Instead-Of"] == "2020-08-27"


# -- ui_mode ----------------------------------------------------------------------


def test_ui_mode(env: Env) -> None:
    session = env.client.v1.checkout.sessions.create(params=session_params())
    assert session.ui_mode == "hosted_page"
    explicit = env.client.v1.checkout.sessions.create(params=session_params(ui_mode="hosted_page"))
    assert explicit.ui_mode == "hosted_page"
    for mode in ("embedded_page", "elements", "form", "hosted"):
        with pytest.raises(stripe.InvalidRequestError) as info:
            env.client.v1.checkout.sessions.create(params=session_params(ui_mode=mode))
        assert info.value.param == "ui_mode"


# -- refused input ------------------------------------------------------------------


def test_unknown_expand_paths_are_refused_everywhere(env: Env) -> None:
    product = env.client.v1.products.create(params={"name": "Expand"})
    session = env.client.v1.checkout.sessions.create(params=session_params())
    calls = [
        lambda: env.client.v1.products.retrieve(product.id, params={"expand": ["nope"]}),
        lambda: env.client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["nope"]}),
        lambda: env.client.v1.events.list(params={"expand": ["data.nope"]}),
        lambda: env.client.v1.prices.list(params={"expand": ["data.nope"]}),
        lambda: env.client.v1.checkout.sessions.line_items.list(session.id, params={"expand": ["data.nope"]}),
    ]
    for call in calls:
        with pytest.raises(stripe.InvalidRequestError) as info:
            call()
        assert "This property cannot be expanded (" in str(info.value.user_message)
        assert info.value.param == "expand"


def test_metadata_keys_with_brackets_are_refused(env: Env) -> None:
    response = env.http.post(
        f"{env.api_base}/v1/products",
        headers=bearer(),
        data={"name": "x", "metadata[a[b]]": "1"},
    )
    assert response.status_code == 400


def test_long_idempotency_key_is_refused(env: Env) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.products.create(params={"name": "x"}, options={"idempotency_key": "k" * 256})
    assert "255" in str(info.value.user_message)
    assert env.client.v1.products.create(params={"name": "x"}, options={"idempotency_key": "k" * 255}).id


def test_unsupported_currency_in_a_session(env: Env) -> None:
    items = [
        {"price_data": {"currency": "abc", "unit_amount": 500, "product_data": {"name": "x"}}, "quantity": 1}
    ]
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.checkout.sessions.create(params=session_params(line_items=items))
    assert info.value.param == "line_items[0][price_data][currency]"
    small = [
        {
            "price_data": {"currency": "huf", "unit_amount": 10000, "product_data": {"name": "x"}},
            "quantity": 1,
        }
    ]
    with pytest.raises(stripe.InvalidRequestError) as info:
        env.client.v1.checkout.sessions.create(params=session_params(line_items=small))
    assert info.value.code == "amount_too_small"


def test_product_updated_carries_previous_attributes(env: Env) -> None:
    product = env.client.v1.products.create(params={"name": "Before"})
    env.client.v1.products.update(product.id, params={"name": "After"})
    event = wait_for(lambda: env.receiver.of(product.id, "product.updated"))[-1]
    assert event["data"]["previous_attributes"]["name"] == "Before"
