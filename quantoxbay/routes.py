"""Route paths, in one place (pages, redirects and tests use these)."""

STOREFRONT = "/"
LOGIN = "/login"
SIGNUP = "/signup"
LIBRARY = "/library"
SELLER = "/seller"
SELLER_PRODUCTS = "/seller/products"
SELLER_PRODUCTS_NEW = "/seller/products/new"
ADMIN = "/admin"
PRODUCT = "/products/[product_id]"
SELLER_PAGE = "/sellers/[handle]"
SELLER_PRODUCT_EDIT = "/seller/products/[product_id]/edit"
CHECKOUT_SUCCESS = "/checkout/success"
FORGOT_PASSWORD = "/forgot-password"  # noqa: S105 (a route, not a password)
RESET_PASSWORD = "/reset-password"  # noqa: S105 (a route; ?token=... from the e-mailed link)
VERIFY_EMAIL = "/verify-email"  # ?token=... from the e-mailed link

API_HEALTH = "/api/health"
API_AUTH_COMPLETE = "/api/auth/complete"
API_AUTH_LOGOUT = "/api/auth/logout"
API_STRIPE_WEBHOOK = "/api/stripe/webhook"
# Events of sellers' connected accounts (Stripe's Connect endpoint, its own signing secret).
API_STRIPE_CONNECT_WEBHOOK = "/api/stripe/connect-webhook"
API_DOWNLOADS = "/api/downloads"
STRIPE_LOCAL_MOUNT = "/stripe-local"

SESSION_COOKIE = "qb_session"
# Random per browser; binds a one-time log-in ticket to the browser that asked for it.
LOGIN_NONCE_COOKIE = "qb_login_nonce"


def product_path(product_id: int) -> str:
    return f"/products/{product_id}"


def seller_product_edit_path(product_id: int) -> str:
    return SELLER_PRODUCT_EDIT.replace("[product_id]", str(product_id))


SELLER_ORDERS = "/seller/orders"
SELLER_PROMOTIONS = "/seller/promotions"
SELLER_PAYOUTS = "/seller/payouts"
API_COVERS = "/api/covers"
SITEMAP = "/sitemap.xml"
ROBOTS = "/robots.txt"
