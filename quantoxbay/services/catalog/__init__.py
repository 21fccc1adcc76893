"""Catalog: sellers create, edit, publish and delete products with files; buyers find and open them."""

from quantoxbay.services.catalog.search import *  # noqa: F403
from quantoxbay.services.catalog.search import (  # noqa: F401
    _decode_cursor,
    _encode_cursor,
    _search_filter,
    _search_words,
)
