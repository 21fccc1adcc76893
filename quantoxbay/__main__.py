"""Command line: ``python -m quantoxbay seed-demo | create-user | create-product | migrate``."""

from __future__ import annotations

import argparse
import mimetypes
import sys
from pathlib import Path

from quantoxbay.db import session_scope
from quantoxbay.migrations import upgrade_to_head
from quantoxbay.models import Role
from quantoxbay.services import DomainError, accounts, catalog, demo
from quantoxbay.services.money import parse_price
from quantoxbay.settings import get_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m quantoxbay", description="QuantoxBay administration")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    sub.add_parser("seed-demo", help="create the demo users and products (once)")

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
    product.add_argument("--description", default="")
    product.add_argument("--file", required=True, type=Path, action="append", dest="files")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = get_settings()
    try:
        if args.command == "migrate":
            upgrade_to_head()
            print("Database is at the newest schema.")
            return 0
        from quantoxbay.storage import get_storage

        if args.command == "seed-demo":
            with session_scope() as session:
                created = demo.seed_demo(
                    session=session, storage=get_storage(), max_upload_bytes=settings.max_upload_bytes
                )
            print("Demo data created." if created else "Demo data already present.")
            print(f"Demo logins (password for all: {demo.DEMO_PASSWORD}):")
            for role, email in demo.DEMO_USERS.items():
                print(f"  {role.value:<6} {email}")
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
    except DomainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1  # pragma: no cover - argparse requires a command


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
