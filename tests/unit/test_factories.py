"""The test factories stay honest: accounts they make carry the app's own cost-12 bcrypt hash
and log in, while the hashing itself runs once per distinct password."""

from __future__ import annotations

import bcrypt
import pytest
from sqlmodel import Session

from quantoxbay.models import Role, User
from quantoxbay.services import accounts
from tests import factories
from tests.factories import PASSWORD, create_user


def test_factory_users_share_one_cost_12_hash_per_password_and_log_in(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    factories._password_hash.cache_clear()
    hashed: list[bytes] = []
    real_hashpw = bcrypt.hashpw
    monkeypatch.setattr(bcrypt, "hashpw", lambda pw, salt: hashed.append(pw) or real_hashpw(pw, salt))

    buyer, seller = create_user(db), create_user(db, Role.SELLER)
    other = create_user(db, password="another-password-1")

    assert hashed == [PASSWORD.encode(), b"another-password-1"]
    rows = {u.id: db.get(User, u.id) for u in (buyer, seller, other)}
    assert all(row is not None and row.password_hash.startswith("$2b$12$") for row in rows.values())
    assert rows[buyer.id].password_hash == rows[seller.id].password_hash  # type: ignore[union-attr]
    assert accounts.authenticate(session=db, email=buyer.email, password=PASSWORD).id == buyer.id
    assert accounts.authenticate(session=db, email=other.email, password="another-password-1").id == other.id


def test_the_apps_own_hashing_is_untouched_outside_the_factory(db: Session) -> None:
    create_user(db)
    assert accounts.hash_password is factories._app_hash_password
    first, second = accounts.hash_password(PASSWORD), accounts.hash_password(PASSWORD)
    assert first != second  # a fresh salt each time: nothing cached in the app
