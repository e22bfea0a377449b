"""OpenAI-style cursor pagination over a table ordered by ``created_at`` then insertion ``seq``.

``after``/``before`` are object ids; the page holds up to ``limit`` (1..100) objects past the
cursor in ``order`` and ``has_more`` says whether more lie beyond them in that direction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stores.errors import InvalidInput

MAX_LIMIT = 100
DEFAULT_LIMIT = 20


@dataclass(frozen=True)
class Listing:
    """A page request: checked once, then turned into SQL by ``fetch_page``."""

    limit: int = DEFAULT_LIMIT
    order: str = "desc"
    after: str | None = None
    before: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}, got {self.limit!r}", param="limit")
        if self.order not in ("asc", "desc"):
            raise InvalidInput(f"order must be 'asc' or 'desc', got {self.order!r}", param="order")


@dataclass(frozen=True)
class Source:
    """What to page over: ``select`` (ending in its FROM/JOINs), a ``where`` with its params, the
    key columns, and how to find a cursor's key: ``cursor_sql`` returns (created_at, seq) for
    ``cursor_params + (id,)``."""

    select: str
    where: str
    params: Sequence[Any]
    created_at: str
    seq: str
    cursor_sql: str
    cursor_params: Sequence[Any] = ()


def fetch_page(conn: sqlite3.Connection, source: Source, listing: Listing) -> tuple[list[tuple[Any, ...]], bool]:
    """The rows of one page in ``listing.order`` and whether more follow them."""
    conditions = [f"({source.where})"]
    params: list[Any] = list(source.params)
    ascending = listing.order == "asc"
    key = f"({source.created_at}, {source.seq})"
    if listing.after is not None:
        conditions.append(f"{key} {'>' if ascending else '<'} (?, ?)")
        params.extend(_cursor(conn, source, listing.after, "after"))
    reverse = listing.before is not None and listing.after is None
    if listing.before is not None:
        conditions.append(f"{key} {'<' if ascending else '>'} (?, ?)")
        params.extend(_cursor(conn, source, listing.before, "before"))
    # "before" alone walks back from the cursor: fetch nearest-first, then restore the order
    direction = "ASC" if ascending != reverse else "DESC"
    sql = (
        f"{source.select} WHERE {' AND '.join(conditions)} "
        f"ORDER BY {source.created_at} {direction}, {source.seq} {direction} LIMIT ?"
    )
    rows = conn.execute(sql, (*params, listing.limit + 1)).fetchall()
    has_more = len(rows) > listing.limit
    rows = rows[: listing.limit]
    if reverse:
        rows.reverse()
    return rows, has_more


def _cursor(conn: sqlite3.Connection, source: Source, object_id: str, param: str) -> tuple[int, int]:
    row = conn.execute(source.cursor_sql, (*source.cursor_params, object_id)).fetchone()
    if row is None:
        raise InvalidInput(f"{param}: no object with id {object_id!r} in this list", param=param)
    return int(row[0]), int(row[1])
