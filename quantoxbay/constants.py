"""Plain values that services decide with and pages show (choices in a Select, labels).

Here, below both, so pages need not import services (the layers: pages -> state -> services).
"""

#: Categories a product can be filed under ("" = uncategorised).
CATEGORIES: dict[str, str] = {
    "ebooks": "E-books",
    "templates": "Templates",
    "presets": "Presets",
    "courses": "Courses",
    "software": "Software & code",
    "audio": "Audio & music",
    "graphics": "Graphics & fonts",
    "photos": "Photos",
    "video": "Video",
    "games": "Games",
    "other": "Other",
}

#: Storefront sort orders (services.catalog.SortOrder) and their labels.
SORT_ORDERS: dict[str, str] = {
    "newest": "Newest",
    "price_asc": "Price: low to high",
    "price_desc": "Price: high to low",
    "best_selling": "Best-selling",
}

#: The seller dashboard's periods and their labels.
PERIODS: dict[str, str] = {
    "today": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "all": "All time",
}

#: The reasons Stripe accepts for a refund.
REFUND_REASONS = ("requested_by_customer", "duplicate", "fraudulent")

# How a product page's buy box sells a product (services.checkout.offer_for): "Buy now", "Get it
# free", or "Buy now" under "Name a fair price".
OFFER_PAID, OFFER_FREE, OFFER_PAY_WHAT_YOU_WANT = "paid", "free", "pay_what_you_want"

#: Said beside every refund form: refunding what is left of an order revokes its download grants.
FULL_REFUND_NOTE = (
    "A full refund ends the buyer's downloads; a partial refund keeps them. Stripe returns the money "
    "to the buyer's card in 5-10 days."
)
