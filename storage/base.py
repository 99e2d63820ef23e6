"""What every repository shares: the engine, the per-user write lock, upserts (dialect details
of statements live here; the driver's own connections for the login statements in driver.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.models import users


class Repository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine


async def lock_user(conn: AsyncConnection, username: str) -> bool:
    """Serialise writes to one user's data for the rest of the transaction; False if no such user.

    On PostgreSQL this takes FOR NO KEY UPDATE on the user's row (which does not block the
    foreign-key checks of other inserts). SQLite ignores it: there every write transaction
    already holds the single database write lock from its first statement on.
    """
    query = sa.select(users.c.username).where(users.c.username == username)
    row = await conn.execute(query.with_for_update(key_share=True))
    return row.first() is not None


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], sa.Insert] = {}


def upsert_statement(dialect_name: str, table: sa.Table, columns: tuple[str, ...],
                      key: tuple[str, ...]) -> sa.Insert:
    """INSERT ... ON CONFLICT (key) DO UPDATE with bound parameters, built once per shape."""
    from sqlalchemy.dialects import postgresql, sqlite

    cache_key = (dialect_name, table.name, key, columns)
    stmt = _UPSERTS.get(cache_key)
    if stmt is None:
        dialect = postgresql if dialect_name == "postgresql" else sqlite
        insert = dialect.insert(table).values({c: sa.bindparam(c) for c in columns})
        update = {c: insert.excluded[c] for c in columns if c not in key}
        stmt = _UPSERTS[cache_key] = insert.on_conflict_do_update(
            index_elements=list(key), set_=update
        )
    return stmt


async def upsert(conn: AsyncConnection, table: sa.Table, values: dict[str, object],
                 key: tuple[str, ...]) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE: one statement on SQLite and PostgreSQL alike.

    The statement is built once per table, columns and dialect, with bound parameters.
    """
    stmt = upsert_statement(conn.dialect.name, table, tuple(values), key)
    await conn.execute(stmt, values)
