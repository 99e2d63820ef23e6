"""What every repository shares: the engine and the per-user write lock."""

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


def upsert(conn: AsyncConnection, table: sa.Table, values: dict[str, object],
           key: tuple[str, ...]) -> sa.Executable:
    """INSERT ... ON CONFLICT (key) DO UPDATE: one statement on SQLite and PostgreSQL alike."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values)
    update = {name: stmt.excluded[name] for name in values if name not in key}
    return stmt.on_conflict_do_update(index_elements=list(key), set_=update)
