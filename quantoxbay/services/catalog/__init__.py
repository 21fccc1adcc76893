"""Catalog: sellers create, edit, publish and delete products with files; buyers find and open them.

- :mod:`.products`: a seller's products (create, edit, publish, delete, the edit view);
- :mod:`.files`: product files and cover images (uploads streamed into storage, then recorded);
- :mod:`.views`: what buyers see (cards, the product page, covers, seller profiles);
- :mod:`.search`: listings and search (keyset pages over the full-text index).

Callers use the names re-exported here (``catalog.create_product``). Tuning knobs such as
``SMALL_SET`` and ``CHECK_BATCH`` live in :mod:`.search`: patch them there.
"""

from quantoxbay.services.catalog.files import (
    add_product_file,
    remove_product_file,
    replace_product_file,
    safe_filename,
    set_cover_image,
)
from quantoxbay.services.catalog.products import (
    CATEGORIES,
    MAX_DESCRIPTION,
    MAX_TAGS,
    MAX_TITLE,
    SellerFile,
    SellerProduct,
    SellerProductRow,
    create_product,
    delete_product,
    get_seller_product,
    list_seller_products,
    publish_product,
    unpublish_product,
    update_product,
)
from quantoxbay.services.catalog.search import (
    MAX_PAGE_SIZE,
    SORT_DESCENDING,
    SORT_ORDERS,
    ProductPage,
    SortOrder,
    Strategy,
    count_published,
    list_published,
    search_products,
)
from quantoxbay.services.catalog.views import (
    ProductCard,
    ProductDetail,
    ProductFilePublic,
    SellerProfile,
    cover_url,
    get_published_product,
    get_seller_profile,
    render_description,
)
from quantoxbay.storage import FileTooLarge, StorageError  # raised by the upload functions, for states

__all__ = [
    "CATEGORIES",
    "MAX_DESCRIPTION",
    "MAX_PAGE_SIZE",
    "MAX_TAGS",
    "MAX_TITLE",
    "SORT_DESCENDING",
    "SORT_ORDERS",
    "FileTooLarge",
    "ProductCard",
    "ProductDetail",
    "ProductFilePublic",
    "ProductPage",
    "SellerFile",
    "SellerProduct",
    "SellerProductRow",
    "SellerProfile",
    "SortOrder",
    "StorageError",
    "Strategy",
    "add_product_file",
    "count_published",
    "cover_url",
    "create_product",
    "delete_product",
    "get_published_product",
    "get_seller_product",
    "get_seller_profile",
    "list_published",
    "list_seller_products",
    "publish_product",
    "remove_product_file",
    "render_description",
    "replace_product_file",
    "safe_filename",
    "search_products",
    "set_cover_image",
    "unpublish_product",
    "update_product",
]
