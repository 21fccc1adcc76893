"""Buyers' listings and search: published products, filtered and sorted, one page at a time.

Listings use keyset ("seek") pagination: a page is one index range read from the last
row the buyer saw, so page 400 costs what page 1 costs. Search uses the database's own
full-text index (SQLite FTS5 table ``product_fts``, PostgreSQL ``product.search_vector``,
both created by the migration 7c3e1a9b2d40; d4catalogspeed gave the FTS5 table its prefix
index for search-as-you-type).
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, TextClause, and_, func, literal_column, table, text, tuple_
from sqlalchemy.orm import QueryableAttribute
from sqlmodel import Session, col, select

from quantoxbay.constants import SORT_ORDERS as SORT_ORDERS
from quantoxbay.models import Product, ProductStatus, User
from quantoxbay.services import DomainError
from quantoxbay.services.catalog.views import ProductCard, _card
from quantoxbay.services.money import MAX_PRICE_CENTS
from quantoxbay.storage import Storage

MAX_PAGE_SIZE = 100
_SEARCH_TOKEN = re.compile(r"\w+")

SortOrder = Literal["newest", "price_asc", "price_desc", "best_selling"]


class ProductPage(BaseModel):
    """One page of a listing, and the cursor of the next page (None on the last)."""

    items: list[ProductCard]
    next_cursor: str | None


# --- buyer side: listing and search ----------------------------------------------


SORT_DESCENDING = {"newest": True, "price_asc": False, "price_desc": True, "best_selling": True}


def _column(attribute: Any) -> ColumnElement[Any]:
    """The SQL column behind a model attribute (SQLModel types attributes as their Python values)."""
    return cast(QueryableAttribute[Any], col(attribute)).expression


def _sort_columns(sort: str, entity: type[Product] = Product) -> tuple[ColumnElement, ColumnElement, bool]:
    """(sort key column, tie-breaker, descending) for a sort order."""
    if sort in ("price_asc", "price_desc"):
        key = _column(entity.price_cents)
    elif sort == "best_selling":
        key = _column(entity.sales_count)
    else:
        key = _column(entity.created_at)
    return key, _column(entity.id), SORT_DESCENDING[sort]


def _encode_cursor(sort: str, product: Product) -> str:
    if sort in ("price_asc", "price_desc"):
        key: object = product.price_cents
    elif sort == "best_selling":
        key = product.sales_count
    else:
        key = product.created_at.isoformat()
    raw = json.dumps([sort, key, product.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(sort: str, cursor: str) -> tuple[object, int]:
    """The (key, id) a cursor points after; DomainError when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, key, last_id = json.loads(raw)
        if cursor_sort != sort or isinstance(last_id, bool) or not isinstance(last_id, int):
            raise ValueError("cursor from another listing")
        if sort == "newest":
            parsed = datetime.fromisoformat(key)
            if parsed.tzinfo is None:  # ours always carry their offset
                raise ValueError("cursor time without a zone")
            return parsed, last_id
        if isinstance(key, bool) or not isinstance(key, int):
            raise ValueError("bad key")
        return key, last_id
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise DomainError("That page link is out of date. Start again from the first page.") from exc


#: How a listing finds its rows (see :func:`search_products`). A listing first asks how many
#: rows its most selective filter lets through, reading at most ``SMALL_SET + 1`` index entries.
#: Up to SMALL_SET rows, it collects them all and sorts them (~3 us a row); above that it walks
#: the index of its sort order and tests each row, which then meets a match at least every
#: N / SMALL_SET rows (a page of 24 is then found within ~1,200 rows at 100,000 products).
SMALL_SET = 2000
Strategy = Literal["auto", "collect", "walk"]


@dataclass(frozen=True)
class _Filter:
    """One buyer filter as SQL: ``clause`` may use an index, ``plain`` never does (so that a walk
    stays on the sort order's index), ``candidates`` selects the ids it lets through."""

    name: str
    clause: ColumnElement[bool] | TextClause
    plain: ColumnElement[bool] | TextClause
    candidates: Select
    #: SQLite search only: the FTS5 query, for checking a batch of rows (see :func:`_checked_ids`).
    fts_query: str = ""


def _search_words(query: str) -> list[str]:
    return _SEARCH_TOKEN.findall(query.lower())[:8]


def _unindexed(dialect: str, column: ColumnElement) -> ColumnElement:
    """``column`` in a form no index serves: SQLite's unary ``+``; other databases plan by cost."""
    if dialect != "sqlite":
        return column
    return literal_column(f"+{Product.__tablename__}.{column.key}", type_=column.type)


def _search_filter(dialect: str, words: list[str]) -> _Filter:
    """Products whose title, description or tags hold every word.

    The last word also matches as a prefix ("photo" finds "photography"), so results
    appear while the buyer types. Words are reduced to letters and digits: nothing the
    buyer types reaches the FTS query syntax.
    """
    published = col(Product.status) == ProductStatus.PUBLISHED.value
    if dialect == "sqlite":
        fts = (" ".join(f'"{w}"' for w in words[:-1]) + f' "{words[-1]}"*').strip()
        matches = "SELECT rowid FROM product_fts WHERE product_fts MATCH :fts_query"
        return _Filter(
            "search",
            text(f"product.id IN ({matches})").bindparams(fts_query=fts),
            text(f"+product.id IN ({matches})").bindparams(fts_query=fts),
            select(literal_column("rowid"))
            .select_from(table("product_fts"))
            .where(text("product_fts MATCH :fts_query").bindparams(fts_query=fts)),
            fts_query=fts,
        )
    if dialect == "postgresql":
        tsquery = " & ".join([*words[:-1], f"{words[-1]}:*"])
        clause = text("product.search_vector @@ to_tsquery('english', :ts_query)").bindparams(
            ts_query=tsquery
        )
        return _Filter("search", clause, clause, select(col(Product.id)).where(published, clause))
    # Any other database: a plain (slow) substring match, so the app still works.
    haystack = func.lower(Product.title + " " + Product.tags + " " + Product.description)
    substrings = and_(*[haystack.contains(w) for w in words])
    return _Filter("search", substrings, substrings, select(col(Product.id)).where(published, substrings))


def _filters(
    dialect: str,
    query: str,
    category: str,
    min_price_cents: int | None,
    max_price_cents: int | None,
    seller_id: int | None,
) -> list[_Filter]:
    """The listing's filters, most likely to be selective first."""
    published = col(Product.status) == ProductStatus.PUBLISHED.value
    out: list[_Filter] = []

    def add(name: str, column: ColumnElement, make: Callable[[ColumnElement], ColumnElement]) -> None:
        clause = make(column)
        candidates = select(col(Product.id)).where(published, clause)
        out.append(_Filter(name, clause, make(_unindexed(dialect, column)), candidates))

    words = _search_words(query)
    if words:
        out.append(_search_filter(dialect, words))
    if seller_id is not None:
        add("seller", _column(Product.seller_id), lambda c: c == seller_id)
    if min_price_cents is not None or max_price_cents is not None:
        low = min_price_cents if min_price_cents is not None else -1
        high = max_price_cents if max_price_cents is not None else MAX_PRICE_CENTS + 1
        add("price", _column(Product.price_cents), lambda c: and_(c >= low, c <= high))
    if category:
        value = category.strip().lower()
        add("category", _column(Product.category), lambda c: c == value)
    return out


def _walk_uses_index(sort: str, name: str) -> bool:
    """Whether a filter narrows the index a walk in ``sort`` order reads (kept indexable)."""
    if sort == "newest":
        return name in ("category", "seller")  # (status, category, created_at, id), (seller_id, status, ...)
    return sort in ("price_asc", "price_desc") and name == "price"  # a range of (status, price_cents, id)


def _candidate_counts(session: Session, dialect: str, filters: list[_Filter]) -> list[int]:
    """How many rows each filter lets through, as far as the choice needs: exact up to SMALL_SET + 1.

    SQLite counts, reading at most SMALL_SET + 1 index entries per filter, in one statement.
    PostgreSQL gives its planner's estimate (EXPLAIN plans without reading rows; counting
    there would fetch every matching heap row to recheck the full-text match).
    """
    if not filters:
        return []
    if dialect == "postgresql":
        conn = session.connection()
        counts = []
        for f in filters:
            compiled = f.candidates.compile(dialect=conn.dialect)
            plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar_one()
            counts.append(int(plan[0]["Plan"]["Plan Rows"]))
        return counts
    capped = [
        select(func.count()).select_from(f.candidates.limit(SMALL_SET + 1).subquery()).scalar_subquery()
        for f in filters
    ]
    return list(session.connection().execute(select(*capped)).one())


def search_products(
    *,
    session: Session,
    storage: Storage | None = None,
    query: str = "",
    category: str = "",
    min_price_cents: int | None = None,
    max_price_cents: int | None = None,
    seller_id: int | None = None,
    sort: str = "newest",
    cursor: str | None = None,
    limit: int = 24,
    strategy: Strategy = "auto",
) -> ProductPage:
    """Published products matching a search and filters, one keyset page at a time.

    Two ways to find a page, with the same result: when one filter lets few rows through
    (at most :data:`SMALL_SET`: a rare word, a narrow price range, a small shop), "collect"
    reads those rows and sorts them; otherwise "walk" reads the sort order's index from the
    cursor on and tests each row, stopping at a full page. A filter that lets nothing through
    answers at once. On SQLite, a search that is not the collected filter checks the rows the
    other filters find in order a batch at a time against its index (a word in most products
    fills the page from the first batch, before any counting).

    Args:
        query: Words that must all appear in the title, description or tags.
        category: Only this category ("" for all).
        min_price_cents / max_price_cents: List-price range, inclusive.
        seller_id: Only this seller's products.
        sort: One of :data:`SORT_ORDERS`.
        cursor: ``next_cursor`` of the previous page; None for the first page.
        limit: Page size (1 to 100).
        strategy: "auto" picks as above; "collect" or "walk" force one (tests, benchmarks).

    Raises:
        DomainError: For an unknown sort or a cursor that is not from this listing.
    """
    if sort not in SORT_ORDERS:
        raise DomainError(f"Unknown sort order {sort!r}.")
    if strategy not in ("auto", "collect", "walk"):
        raise DomainError(f"Unknown strategy {strategy!r}.")
    limit = min(max(int(limit), 1), MAX_PAGE_SIZE)
    after = _decode_cursor(sort, cursor) if cursor else None
    dialect = session.get_bind().dialect.name
    filters = _filters(dialect, query, category, min_price_cents, max_price_cents, seller_id)

    # SQLite searches: rows found in order without the search are checked against the search
    # index a batch at a time (:func:`_checked_ids`), never building the whole match list, when
    # every such row is worth checking: a driver's few rows, or a range of the sort order's index.
    # (A walk that tests other filters row by row keeps ``id IN (matches)``: that test reads only
    # the index entry, so the walk never opens the rows the search rejects.)
    search = next((f for f in filters if f.name == "search"), None)
    others = [f for f in filters if f is not search]
    walk_checks = (
        dialect == "sqlite" and search is not None and all(_walk_uses_index(sort, f.name) for f in others)
    )
    first: list[int] = []
    resume: tuple[object, int] | None = None
    if walk_checks and strategy != "collect":
        assert search is not None
        # Optimistically first (auto): one batch of the walk. A word in many products fills the
        # page from it, without the counting below (which reads the word's matches once more).
        candidates = functools.partial(_candidate_rows, "walk", sort, others, None)
        rounds = 1 if strategy == "auto" else None
        first, resume = _checked_ids(session, sort, search.fts_query, candidates, after, limit + 1, rounds)
        if resume is None:
            return _page_of(session, storage, sort, first, limit)

    driver: _Filter | None = None
    if strategy != "walk":
        # A filter the walk's index already narrows costs the walk nothing: only the others count.
        testing = [f for f in filters if strategy == "collect" or not _walk_uses_index(sort, f.name)]
        counts = _candidate_counts(session, dialect, testing)
        if counts and min(counts) == 0 and dialect != "postgresql":
            return ProductPage(items=[], next_cursor=None)
        smallest = min(zip(counts, range(len(testing)), strict=True), default=None)
        if smallest is not None and smallest[0] <= SMALL_SET:
            driver = testing[smallest[1]]
    plan = "collect" if strategy == "collect" or (strategy == "auto" and driver is not None) else "walk"

    if (plan == "walk" and walk_checks) or (
        dialect == "sqlite" and plan == "collect" and search is not None and driver not in (None, search)
    ):
        assert search is not None
        if plan == "walk" and resume is not None:  # go on from the first batch
            rest, _ = _checked_ids(
                session, sort, search.fts_query, candidates, resume, limit + 1 - len(first)
            )
            return _page_of(session, storage, sort, first + rest, limit)
        candidates = functools.partial(_candidate_rows, plan, sort, others, driver)
        ids, _ = _checked_ids(session, sort, search.fts_query, candidates, after, limit + 1)
        return _page_of(session, storage, sort, ids, limit)

    published = col(Product.status) == ProductStatus.PUBLISHED.value
    key_col, id_col, descending = _sort_columns(sort, Product)
    if plan == "collect":
        # Only the driver may use an index; the other filters test the driver's few rows. The
        # (id, sort key) pairs are materialised first, so no index order tempts the planner into
        # a walk; only the page's rows are then read whole.
        where = [published, *(f.clause if driver in (None, f) else f.plain for f in filters)]
        if after is not None:
            where.append(_after(sort, after, key_col, id_col))
        found = select(id_col.label("id"), key_col.label("sort_key")).where(*where).cte("listing_rows")
        if dialect in ("sqlite", "postgresql"):
            found = found.prefix_with("MATERIALIZED")
        page_key, page_id = found.c.sort_key, found.c.id
        page_order = (page_key.desc(), page_id.desc()) if descending else (page_key.asc(), page_id.asc())
        page = select(page_id, page_key).order_by(*page_order).limit(limit + 1).subquery("listing_page")
        page_key, page_id = page.c.sort_key, page.c.id
        statement = (
            select(Product, User)
            .join(page, page_id == col(Product.id))
            .join(User, col(User.id) == col(Product.seller_id))
            .order_by(*((page_key.desc(), page_id.desc()) if descending else (page_key.asc(), page_id.asc())))
        )
    else:
        where = [published, *(f.clause if _walk_uses_index(sort, f.name) else f.plain for f in filters)]
        if after is not None:
            where.append(_after(sort, after, key_col, id_col))
        order = (key_col.desc(), id_col.desc()) if descending else (key_col.asc(), id_col.asc())
        statement = (
            select(Product, User)
            .join(User, col(User.id) == col(Product.seller_id))
            .where(*where)
            .order_by(*order)
            .limit(limit + 1)
        )
    rows = session.exec(statement).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    items = [_card(p, u, storage) for p, u in rows]
    next_cursor = _encode_cursor(sort, rows[-1][0]) if has_more and rows else None
    return ProductPage(items=items, next_cursor=next_cursor)


#: The first batch of rows a SQLite search checks against its index (see :func:`_checked_ids`).
CHECK_BATCH = 1000
_FTS_CHECK = text(
    "SELECT rowid FROM product_fts WHERE product_fts MATCH :fts_query AND rowid BETWEEN :low AND :high "
    "AND +rowid IN (SELECT value FROM json_each(:ids))"
)


def _candidate_rows(
    plan: str,
    sort: str,
    filters: list[_Filter],
    driver: _Filter | None,
    after: tuple[object, int] | None,
    count: int,
) -> Select:
    """The ids of the next ``count`` rows that pass ``filters``, in ``sort`` order after ``after``.

    "collect": only the driver may use an index, the rows it lets through are sorted; "walk":
    the sort order's index is read from ``after`` on.
    """
    published = col(Product.status) == ProductStatus.PUBLISHED.value
    key_col, id_col, descending = _sort_columns(sort, Product)
    if plan == "collect":
        where = [published, *(f.clause if driver in (None, f) else f.plain for f in filters)]
    else:
        where = [published, *(f.clause if _walk_uses_index(sort, f.name) else f.plain for f in filters)]
    if after is not None:
        where.append(_after(sort, after, key_col, id_col))
    if plan == "collect":
        found = select(id_col.label("id"), key_col.label("sort_key")).where(*where)
        rows = found.cte("listing_rows").prefix_with("MATERIALIZED")
        key_col, id_col = rows.c.sort_key, rows.c.id
        statement = select(id_col)
    else:
        statement = select(id_col).where(*where)
    order = (key_col.desc(), id_col.desc()) if descending else (key_col.asc(), id_col.asc())
    return statement.order_by(*order).limit(count)


def _checked_ids(
    session: Session,
    sort: str,
    fts_query: str,
    candidates: Callable[[tuple[object, int] | None, int], Select],
    after: tuple[object, int] | None,
    wanted: int,
    rounds: int | None = None,
) -> tuple[list[int], tuple[object, int] | None]:
    """Up to ``wanted`` ids, in order, of the candidate rows that also match ``fts_query`` (SQLite).

    Each batch of candidates is checked in one pass over the search index limited to the
    batch's id range, against the batch's ids (a few hundred): far cheaper than building the
    index of every match (75,000 rows for a word in 75% of products) that ``id IN (...)`` builds,
    and than a lookup per row (a prefix query longer than the prefix index merges all its terms
    at every lookup).

    At most ``rounds`` batches are read (None: as many as it takes). Returns the ids, and None
    when they are final (a full page, or the candidates ran out) or else the position (sort key,
    id) to go on from.
    """
    conn = session.connection()
    found: list[int] = []
    batch = CHECK_BATCH
    while True:
        ids = conn.execute(candidates(after, batch)).scalars().all()
        if not ids:
            break
        listed = f"[{','.join(map(str, ids))}]"
        params = {"fts_query": fts_query, "low": min(ids), "high": max(ids), "ids": listed}
        matches = set(conn.execute(_FTS_CHECK, params).scalars())
        found += [i for i in ids if i in matches]
        if len(ids) < batch or len(found) >= wanted:
            break
        # The next batch starts after this one's last row (its sort key read by primary key) and
        # is sized by the share of rows that matched so far (half again as many, at most 8 times more).
        key_col, id_col, _ = _sort_columns(sort, Product)
        after = (conn.execute(select(key_col).where(id_col == ids[-1])).scalar_one(), ids[-1])
        if rounds is not None:
            rounds -= 1
            if rounds <= 0:
                return found, after
        share = max(len(matches), 1) / len(ids)
        batch = min(max(int((wanted - len(found)) / share * 1.5), CHECK_BATCH), batch * 8)
    return found[:wanted], None


def _page_of(session: Session, storage: Storage | None, sort: str, ids: list[int], limit: int) -> ProductPage:
    """The page of products ``ids`` (in that order; one more than ``limit`` means there is a next page)."""
    rows = session.exec(
        select(Product, User)
        .join(User, col(User.id) == col(Product.seller_id))
        .where(col(Product.id).in_(ids[:limit]))
    ).all()
    by_id = {p.id: (p, u) for p, u in rows}
    ordered = [by_id[i] for i in ids[:limit] if i in by_id]
    items = [_card(p, u, storage) for p, u in ordered]
    next_cursor = _encode_cursor(sort, ordered[-1][0]) if len(ids) > limit and ordered else None
    return ProductPage(items=items, next_cursor=next_cursor)


def _after(
    sort: str, position: tuple[object, int], key_col: ColumnElement, id_col: ColumnElement
) -> ColumnElement:
    """Rows after the cursor's (key, id) in ``sort`` order."""
    key, last_id = position
    if SORT_DESCENDING[sort]:
        return tuple_(key_col, id_col) < tuple_(key, last_id)
    return tuple_(key_col, id_col) > tuple_(key, last_id)


def list_published(
    *, session: Session, limit: int = 24, offset: int = 0, storage: Storage | None = None
) -> list[ProductCard]:
    """Published products, newest first (small offsets only; listings use :func:`search_products`)."""
    rows = session.exec(
        select(Product, User)
        .join(User, col(User.id) == col(Product.seller_id))
        .where(Product.status == ProductStatus.PUBLISHED.value)
        .order_by(col(Product.created_at).desc(), col(Product.id).desc())
        .limit(min(max(limit, 1), MAX_PAGE_SIZE))
        .offset(max(offset, 0))
    ).all()
    return [_card(p, u, storage) for p, u in rows]


def count_published(*, session: Session) -> int:
    return session.exec(
        select(func.count()).select_from(Product).where(Product.status == ProductStatus.PUBLISHED.value)
    ).one()
