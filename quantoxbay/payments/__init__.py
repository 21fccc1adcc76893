"""Stripe, and only Stripe: the SDK client (real or embedded), the gateway every call goes through
(``gateway.StripeGateway``), the 429 retry, and the webhook signature check."""
