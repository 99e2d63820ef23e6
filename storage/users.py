"""Accounts: SCRAM credentials, existence, deletion with all their data, last logout (XEP-0012)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.base import Repository, lock_user
from storage.driver import Driver
from storage.models import credentials as credentials_table
from storage.models import last_activity, roster_versions, users
from storage.types import ScramCredentials, UserExists

CredentialList = list[ScramCredentials]


def _credential_rows(username: str, creds: CredentialList) -> list[dict[str, object]]:
    mechanisms = [c.mechanism for c in creds]
    if len(set(mechanisms)) != len(mechanisms):
        raise ValueError(f"duplicate SCRAM mechanism in {mechanisms}")
    return [
        {
            "username": username,
            "mechanism": c.mechanism,
            "salt": c.salt,
            "iterations": c.iterations,
            "stored_key": c.stored_key,
            "server_key": c.server_key,
        }
        for c in creds
    ]


# The reads of every login and the logout write run on the driver (``storage.driver.Driver``).
_CREDENTIALS = sa.select(
    credentials_table.c.mechanism,
    credentials_table.c.salt,
    credentials_table.c.iterations,
    credentials_table.c.stored_key,
    credentials_table.c.server_key,
).where(
    credentials_table.c.username == sa.bindparam("username"),
    credentials_table.c.mechanism == sa.bindparam("mechanism"),
)
_EXISTS = sa.select(users.c.username).where(users.c.username == sa.bindparam("username"))
_LAST_LOGOUT = sa.select(last_activity.c.logout_at, last_activity.c.status).where(
    last_activity.c.username == sa.bindparam("username")
)


class UserRepository(Repository):
    def __init__(self, engine: AsyncEngine, driver: Driver) -> None:
        super().__init__(engine)
        self._driver = driver
        # Called with the username after a user was deleted (read caches drop their entries).
        self.deleted: list[Callable[[str], None]] = []

    async def create(self, username: str, credentials: CredentialList) -> None:
        """Register `username`; raises UserExists if taken (the primary key decides races)."""
        rows = _credential_rows(username, credentials)
        async with self._engine.begin() as conn:
            try:
                await conn.execute(
                    users.insert().values(username=username, created_at=datetime.now(UTC))
                )
            except IntegrityError as exc:
                raise UserExists(username) from exc
            # The version row exists from the start, so roster writes can lock it by UPDATE.
            # It starts anywhere below 2**30 (room for a billion changes in a 32-bit column):
            # a client's cached roster of an earlier account of this name must not match the
            # new one's version (RFC 6121 §2.6), as a restart at 0 would.
            await conn.execute(roster_versions.insert().values(
                username=username, version=secrets.randbelow(1 << 30)))
            if rows:
                await conn.execute(credentials_table.insert(), rows)

    async def get_credentials(self, username: str, mechanism: str) -> ScramCredentials | None:
        rows = await self._driver.fetch(
            _CREDENTIALS, {"username": username, "mechanism": mechanism}
        )
        if not rows:
            return None
        name, salt, iterations, stored_key, server_key = rows[0]
        return ScramCredentials(
            mechanism=name,
            salt=bytes(salt),
            iterations=int(iterations),
            stored_key=bytes(stored_key),
            server_key=bytes(server_key),
        )

    async def set_credentials(self, username: str, credentials: CredentialList) -> bool:
        """Replace all of the user's credentials; False if there is no such user."""
        rows = _credential_rows(username, credentials)
        try:
            async with self._engine.begin() as conn:
                if not await lock_user(conn, username):
                    return False
                await conn.execute(
                    credentials_table.delete().where(credentials_table.c.username == username)
                )
                if rows:
                    await conn.execute(credentials_table.insert(), rows)
        except IntegrityError:  # the user was deleted meanwhile
            return False
        return True

    async def exists(self, username: str) -> bool:
        return bool(await self._driver.fetch(_EXISTS, {"username": username}))

    async def delete(self, username: str) -> bool:
        """Remove the user; every per-user table follows by ON DELETE CASCADE, in one statement."""
        async with self._engine.begin() as conn:
            result = await conn.execute(users.delete().where(users.c.username == username))
        for hook in self.deleted:
            hook(username)
        return result.rowcount > 0

    async def list(self) -> list[str]:
        async with self._engine.connect() as conn:
            names = (await conn.execute(sa.select(users.c.username))).scalars().all()
        # Sorted here, not by ORDER BY: PostgreSQL's collation depends on the database's locale.
        return sorted(names)

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one()

    async def set_last_logout(self, username: str, when: datetime, status: str | None) -> None:
        """Record the last logout (XEP-0012); a user deleted meanwhile is silently ignored."""
        if when.utcoffset() is None:
            raise ValueError("naive datetime given to storage; use an aware UTC datetime")
        values = {"username": username, "logout_at": when, "status": status}
        try:
            # One statement: the foreign key refuses a user deleted meanwhile.
            await self._driver.upsert(last_activity, values, key=("username",))
        except IntegrityError:
            return

    async def get_last_logout(self, username: str) -> tuple[datetime, str | None] | None:
        rows = await self._driver.fetch(_LAST_LOGOUT, {"username": username})
        if not rows:
            return None
        when, status = rows[0]
        return when, status
