"""Stripe: the client factory (real or embedded) and webhook verification."""
