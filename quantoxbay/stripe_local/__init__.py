"""The embedded Stripe: a local stand-in for the Stripe API that the real SDK talks to.

QuantoxBay uses it when ``STRIPE_SECRET_KEY`` is unset. It behaves like a
separate service: it imports nothing else from QuantoxBay and keeps all of its
state in its own SQLite file (``StripeLocalConfig.db_path``), so a restart
loses nothing, pending webhook deliveries included.

Use::

    from quantoxbay.stripe_local import create_stripe_local_app, StripeLocalConfig

    config = StripeLocalConfig(
        db_path=Path("data/stripe_local.db"),
        secret_key="sk_test_...",  # the only key it accepts: 32+ random characters
        public_base_url="http://localhost:3000/stripe-local",
        webhook_url="http://localhost:3000/api/stripe/webhook",
        webhook_secret="whsec_...",
    )
    app = create_stripe_local_app(config)
    # mount at /stripe-local; then
    client = stripe.StripeClient(config.secret_key,
                                 base_addresses={"api": "http://localhost:3000/stripe-local"})

What it serves (paths inside the app):

* ``/v1/...``: checkout sessions (create, retrieve with ``expand``, update
  ``metadata``, list, ``/line_items``, ``/expire``), payment intents (retrieve,
  list), charges, refunds (create, retrieve, update, list), payment methods
  (retrieve), customers (create, retrieve, update, delete, list), disputes
  (retrieve; update with evidence ``winning_evidence``/``losing_evidence``),
  products (create with ``name``, optional custom ``id``, ``description``,
  ``images``, ``metadata``, ``active``; retrieve; update, which merges
  ``metadata`` and bumps ``updated``; events ``product.created``,
  ``product.updated``), coupons (create, retrieve, update, delete, list), promotion codes
  (``promotion[type]=coupon&promotion[coupon]=...``, as in API
  2025-09-30.clover and later) and events (retrieve; list newest
  first with ``type`` (``*`` suffix allowed), ``types[]``, ``created``,
  ``delivery_success``, ``limit``, ``starting_after``/``ending_before``). Form-encoded bracket
  parameters, Stripe's object shapes, list envelopes and error bodies, a
  ``Request-Id`` header, Idempotency-Key replay (24 h), a per-endpoint token
  bucket (``rate_limit_per_second``, 429 ``rate_limit``), and only the
  instance's own ``secret_key`` (any other: 401, Stripe's "Invalid API Key").
  Only ``mode=payment`` and ``ui_mode=hosted_page`` are supported; line items
  take a stored, active Price (``line_items[i][price]``) or inline
  ``price_data`` with ``price_data[product]`` (a stored, active product) or
  ``price_data[product_data]`` (an inline product, stored and retrievable).
  Prices (:mod:`.prices`: one-time; create, retrieve, update, list with
  ``lookup_keys[]``, ``product``, ``active``), product lists, and
  ``/v1/webhook_endpoints`` (:mod:`.webhook_endpoints`). ``Stripe-Version``
  (:mod:`.versions`): an unknown version is refused with 400 "Invalid Stripe
  API version: X"; a real older one is served with the pinned version's shapes
  and the response headers say so (``Stripe-Version`` names the pinned version,
  ``Stripe-Version-Served-Instead-Of`` the requested one). An account-wide
  token bucket (``account_rate_limit_per_second``, by default the per-endpoint
  rate) comes before the per-endpoint one.
* ``/checkout/{id}``: the hosted checkout page (see :mod:`.checkout_page` for
  its accessible names), public like Stripe's: it needs no key and acts on its
  own open session only (pay it, apply or remove a promotion code); Stripe's
  test cards (:mod:`.cards`), 3-D Secure step at ``/checkout/{id}/authenticate``.
* ``/_local/checkout/{id}/pay``: not part of Stripe; pays a session without
  HTML for tests and load benchmarks (form fields ``card_number``, ``expiry``,
  ``cvc``, ``name``, ``email``, ``promotion_code``, ``three_d_secure`` =
  ``complete``|``fail``; all optional, defaults pay with 4242...). Answers JSON
  ``{outcome, message, error, redirect_url, session}``: 200 paid, 402
  declined, 400 invalid, 409 not open. Also ``POST /_local/webhooks/flush`` and
  ``POST /_local/sweep``. All need the instance's ``secret_key``.

Connect (Express accounts, destination charges): ``/v1/accounts`` (create
with ``type=express`` or ``controller[...]``, retrieve, update, delete, list),
``/v1/account_links`` (hosted onboarding at ``/connect/onboarding/{token}``),
``/v1/accounts/{id}/login_links`` (Express dashboard at
``/connect/express/{token}``), ``/v1/transfers`` (+ ``/reversals``),
``/v1/application_fees`` (+ ``/refunds``), ``/v1/balance``,
``/v1/balance_transactions``, ``/v1/payouts``, ``/v1/charges``; the
``Stripe-Account`` header scopes balance, balance transactions, payouts,
charges and events. ``payment_intent_data[application_fee_amount]`` and
``[transfer_data][destination]`` on a Checkout Session make a destination
charge; ``reverse_transfer`` / ``refund_application_fee`` on refunds. See
:mod:`.accounts` and :mod:`.transfers` for the numbers and the test-mode
inputs. Connected-account events carry ``account`` and go to
``connect_webhook_url`` signed with ``connect_webhook_secret``.
``POST /_local/clock/advance`` (``seconds``) moves the instance's clock and
runs what is due; ``POST /_local/accounts/{id}/onboard`` onboards without a
browser.

Coupons and products: as on Stripe, ``applies_to[products]`` holds Product ids
that must exist (else 404 ``resource_missing``, param
``applies_to[products]``), and a coupon discounts only the line items whose
product id is listed. A shop therefore creates one Product per shop product
(``POST /v1/products``) and names it in ``line_items[i][price_data][product]``;
a ``product_data`` line item gets a fresh generated id that no coupon can name.

Events: every event is stored and listed; the ones in
``StripeLocalConfig.webhook_enabled_events`` (checkout, refund and dispute
events by default; ``("*",)`` for all) are POSTed to ``webhook_url``, signed
with ``Stripe-Signature: t=...,v1=...`` (stripe-python's scheme, fresh ``t``
per attempt), retried with exponential backoff up to
``webhook_max_attempts`` (by default Stripe's sandbox schedule: three retries
over a few hours). ``app.state.stripe_local`` (a :class:`StripeLocal`)
offers ``flush_webhooks(timeout)``, ``sweep_now()``, ``set_rate_limit(n)``,
``start()`` and ``stop()``.
"""

from .app import create_stripe_local_app
from .config import API_VERSION, DEFAULT_CONNECT_ENABLED_EVENTS, DEFAULT_ENABLED_EVENTS, StripeLocalConfig
from .runtime import StripeLocal
from .webhooks import sign_payload

__all__ = [
    "API_VERSION",
    "DEFAULT_CONNECT_ENABLED_EVENTS",
    "DEFAULT_ENABLED_EVENTS",
    "StripeLocal",
    "StripeLocalConfig",
    "create_stripe_local_app",
    "sign_payload",
]
