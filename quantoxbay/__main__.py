"""Command line: ``python -m quantoxbay seed-demo | secure-demo | create-user | create-product |
onboard-seller | reconcile | migrate``."""

from __future__ import annotations

import argparse
import mimetypes
import sys
from pathlib import Path

from pydantic import ValidationError
from sqlmodel import Session

from quantoxbay.db import session_scope
from quantoxbay.migrations import upgrade_to_head
from quantoxbay.models import Role
from quantoxbay.services import DomainError, accounts, catalog, connect, demo, ledger
from quantoxbay.services.money import parse_price
from quantoxbay.settings import Settings, describe_invalid_settings, get_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m quantoxbay", description="QuantoxBay administration")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    sub.add_parser(
        "seed-demo",
        help="create the demo users and products (once); with a non-loopback HOST, random passwords",
    )
    sub.add_parser(
        "secure-demo",
        help="with a non-loopback HOST, replace the published demo password where it still works",
    )

    user = sub.add_parser("create-user", help="create an account")
    user.add_argument("email")
    user.add_argument("--password", required=True)
    user.add_argument("--role", choices=[r.value for r in Role], default=Role.BUYER.value)

    product = sub.add_parser("create-product", help="create and publish a product with one file")
    product.add_argument("--seller", required=True, metavar="EMAIL")
    product.add_argument("--title", required=True)
    price = product.add_mutually_exclusive_group(required=True)
    price.add_argument("--price-cents", type=int)
    price.add_argument("--price", help="as money, e.g. 9.99")
    product.add_argument("--currency", default="usd")
    product.add_argument(
        "--pay-what-you-want",
        action="store_true",
        help="the price is the minimum; the buyer names the amount",
    )
    product.add_argument("--description", default="")
    product.add_argument("--file", required=True, type=Path, action="append", dest="files")

    onboard = sub.add_parser(
        "onboard-seller",
        help="embedded Stripe only: open the seller's connected account and complete its test onboarding",
    )
    onboard.add_argument("email")

    reconcile = sub.add_parser(
        "reconcile",
        help="compare the shop's ledger with Stripe's charges, transfers, fees and refunds; exit 1 on drift",
    )
    reconcile.add_argument(
        "--sync", action="store_true", help="read back unsynced sales and run due tasks first"
    )
    reconcile.add_argument(
        "--retry-failed", action="store_true", help="queue ledger tasks that gave up again"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "\n".join(f"  {line}" for line in describe_invalid_settings(exc).splitlines())
        print(f"error: the configuration is refused:\n{problems}", file=sys.stderr)
        return 2
    try:
        if args.command == "migrate":
            upgrade_to_head()
            print("Database is at the newest schema.")
            return 0

        if args.command == "seed-demo":
            return _seed_demo(settings)
        if args.command == "secure-demo":
            if not settings.listens_on_loopback:
                with session_scope() as session:
                    _print_replaced(settings, demo.replace_published_passwords(session=session))
            return 0
        if args.command == "create-user":
            with session_scope() as session:
                user = accounts.create_user(
                    session=session, email=args.email, password=args.password, role=args.role
                )
            print(f"Created {user.role} {user.email} (id {user.id}).")
            return 0
        if args.command == "create-product":
            return _create_product(args, settings.max_upload_bytes)
        if args.command == "onboard-seller":
            return _onboard_seller(settings, args.email)
        if args.command == "reconcile":
            return _reconcile(args)
    except DomainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1  # pragma: no cover - argparse requires a command


def _onboard(settings: Settings, session: Session, seller_id: int) -> None:
    """Open the seller's account on the embedded Stripe (served here for the moment) and fill in its
    onboarding form with test data; the shop records what Stripe then says of it."""
    from quantoxbay.api.embedded import complete_test_onboarding, running_embedded_stripe
    from quantoxbay.payments.client import make_stripe_client
    from quantoxbay.payments.gateway import StripeGateway

    with running_embedded_stripe(settings) as local:
        gateway = StripeGateway(make_stripe_client(local))
        account = connect.ensure_account(session=session, gateway=gateway, seller_id=seller_id)
        complete_test_onboarding(local, account.stripe_account_id)
        connect.refresh_account(session=session, gateway=gateway, seller_id=seller_id)


def _onboard_seller(settings: Settings, email: str) -> int:
    from sqlmodel import select

    from quantoxbay.models import User

    if not settings.uses_embedded_stripe:
        print(
            "error: with STRIPE_SECRET_KEY the seller completes Stripe's own onboarding: "
            "Seller > Payouts > Set up payouts.",
            file=sys.stderr,
        )
        return 2
    with session_scope() as session:
        seller = session.exec(select(User).where(User.email == accounts.normalize_email(email))).first()
        if seller is None or seller.id is None:
            print(f"error: no user with email {email}", file=sys.stderr)
            return 2
        _onboard(settings, session, seller.id)
        status = connect.payout_status(session=session, seller_id=seller.id)
    print(f"{email}: {status.label} ({status.stripe_account_id}).")
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from quantoxbay.payments.gateway import get_gateway

    gateway = get_gateway()
    if args.retry_failed:
        with session_scope() as session:
            print(f"Queued {ledger.retry_failed_tasks(session=session)} failed ledger task(s) again.")
    if args.sync or args.retry_failed:
        synced, done = ledger.run_once(gateway=gateway)
        print(f"Read back {synced} sale(s); {done} ledger task(s) done.")
    with session_scope() as session:
        report = ledger.reconcile(session=session, gateway=gateway)
    for drift in report.drifts:
        print(f"  {drift}")
    for problem in report.unavailable:
        print(f"  {problem} (Stripe could not be asked)")
    print(f"Reconciled {report.orders} order(s) with Stripe: drift {report.drift_cents} cents.")
    return 0 if report.ok else 1


def _seed_demo(settings: Settings) -> int:
    """Seed the demo once. The published password opens the demo accounts only on a loopback
    HOST; otherwise they get random passwords, printed here once. On the embedded Stripe the demo
    seller is onboarded, so the demo products are for sale."""
    from quantoxbay.storage import get_storage

    exposed = not settings.listens_on_loopback
    passwords = demo.random_passwords() if exposed else None
    with session_scope() as session:
        created = demo.seed_demo(
            session=session,
            storage=get_storage(),
            max_upload_bytes=settings.max_upload_bytes,
            passwords=passwords,
            onboard_seller=(lambda seller_id: _onboard(settings, session, seller_id))
            if settings.uses_embedded_stripe
            else None,
        )
        replaced = demo.replace_published_passwords(session=session) if exposed and not created else {}
        published = (
            set() if exposed else {u.email for u in demo.accounts_with_published_password(session=session)}
        )
    print("Demo data created." if created else "Demo data already present.")
    if not exposed:
        print(f"Demo logins (password for all: {demo.DEMO_PASSWORD}):")
        for role, email in demo.DEMO_USERS.items():
            note = "" if email in published else "  (password set at random earlier, printed then)"
            print(f"  {role.value:<6} {email}{note}")
        return 0
    if created:
        assert passwords is not None
        print(
            f"HOST={settings.host} is reachable from the network, so the published demo password is "
            "not used. Demo logins (random passwords, shown only now):"
        )
        for role, email in demo.DEMO_USERS.items():
            print(f"  {role.value:<6} {email}  {passwords[email]}")
        return 0
    _print_replaced(settings, replaced)
    return 0


def _print_replaced(settings: Settings, replaced: dict[str, str]) -> None:
    if not replaced:
        print(f"HOST={settings.host}: no demo account opens with the published password.")
        return
    print(
        f"HOST={settings.host} is reachable from the network: demo accounts that had the published "
        "password got random ones (shown only now; their sessions were ended):"
    )
    for role, email in demo.DEMO_USERS.items():
        if email in replaced:
            print(f"  {role.value:<6} {email}  {replaced[email]}")


def _create_product(args: argparse.Namespace, max_upload_bytes: int) -> int:
    from sqlmodel import select

    from quantoxbay.models import User
    from quantoxbay.storage import get_storage

    for path in args.files:
        if not path.is_file():
            print(f"error: no such file: {path}", file=sys.stderr)
            return 2
    price_cents = args.price_cents if args.price_cents is not None else parse_price(args.price)
    storage = get_storage()
    with session_scope() as session:
        seller = session.exec(select(User).where(User.email == accounts.normalize_email(args.seller))).first()
        if seller is None:
            print(f"error: no user with email {args.seller}", file=sys.stderr)
            return 2
        assert seller.id is not None
        product = catalog.create_product(
            session=session,
            seller_id=seller.id,
            title=args.title,
            description=args.description,
            price_cents=price_cents,
            currency=args.currency,
            pay_what_you_want=args.pay_what_you_want,
        )
        assert product.id is not None
        for path in args.files:
            with path.open("rb") as stream:
                catalog.add_product_file(
                    session=session,
                    storage=storage,
                    product_id=product.id,
                    seller_id=seller.id,
                    filename=path.name,
                    stream=stream,
                    content_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                    max_bytes=max_upload_bytes,
                )
        catalog.publish_product(session=session, storage=storage, product_id=product.id, seller_id=seller.id)
        print(f"Published product {product.id}: {product.title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
