"""Starlette routes mounted into the Reflex backend by ``api_transformer``."""

from quantoxbay.api.app import build_api

__all__ = ["build_api"]
