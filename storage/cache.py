"""A read cache in front of the roster repository.

Presence needs a user's roster at every login, every presence change and every logout; the
cache keeps the last read roster (items, version, pending requests) of recently active users
so that only the first of those reads reaches the database. Every write through the
repository drops the user's entry, and so does deleting the user. The cache is per process:
it is only correct while this process is the only writer of the rosters it holds, so several
nodes sharing a database run without it (``open_storage(..., cache=False)``).

Callers get copies: mutating a returned item never changes the cache.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncEngine

from storage.driver import Driver
from storage.roster import RosterRepository
from storage.types import RosterItem


class _Entry:
    __slots__ = ("items", "pending", "version")

    def __init__(self) -> None:
        self.items: list[RosterItem] | None = None
        self.version: int | None = None
        self.pending: list[tuple[str, str]] | None = None


def _copy(items: list[RosterItem]) -> list[RosterItem]:
    return [replace(item, groups=list(item.groups)) for item in items]


class CachedRosterRepository(RosterRepository):
    def __init__(self, engine: AsyncEngine, driver: Driver, size: int = 20_000) -> None:
        super().__init__(engine, driver)
        self.size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        # Bumped by every eviction: a read that started before a write must not fill the cache.
        self._generation = 0

    def _entry(self, username: str) -> _Entry:
        entry = self._entries.get(username)
        if entry is None:
            entry = self._entries[username] = _Entry()
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(username)
        return entry

    def evict(self, username: str) -> None:
        self._generation += 1
        self._entries.pop(username, None)

    async def get(self, username: str) -> tuple[list[RosterItem], int]:
        entry = self._entries.get(username)
        if entry is not None and entry.items is not None and entry.version is not None:
            self._entries.move_to_end(username)
            return _copy(entry.items), entry.version
        generation = self._generation
        items, version = await super().get(username)
        if generation == self._generation:  # no write happened meanwhile
            entry = self._entry(username)
            entry.items, entry.version = _copy(items), version
        return items, version

    async def get_item(self, username: str, jid: str) -> RosterItem | None:
        entry = self._entries.get(username)
        if entry is not None and entry.items is not None:
            for item in entry.items:
                if item.jid == jid:
                    return replace(item, groups=list(item.groups))
            return None
        return await super().get_item(username, jid)

    async def version(self, username: str) -> int:
        entry = self._entries.get(username)
        if entry is not None and entry.version is not None:
            return entry.version
        return await super().version(username)

    async def list_pending(self, username: str) -> list[tuple[str, str]]:
        entry = self._entries.get(username)
        if entry is not None and entry.pending is not None:
            return list(entry.pending)
        generation = self._generation
        pending = await super().list_pending(username)
        if generation == self._generation:
            self._entry(username).pending = list(pending)
        return pending

    async def put(self, username: str, item: RosterItem) -> int:
        self.evict(username)
        try:
            return await super().put(username, item)
        finally:
            self.evict(username)

    async def remove(self, username: str, jid: str) -> int | None:
        self.evict(username)
        try:
            return await super().remove(username, jid)
        finally:
            self.evict(username)

    async def add_pending(self, username: str, jid: str, xml: str) -> None:
        self.evict(username)
        try:
            await super().add_pending(username, jid, xml)
        finally:
            self.evict(username)

    async def remove_pending(self, username: str, jid: str) -> bool:
        self.evict(username)
        try:
            return await super().remove_pending(username, jid)
        finally:
            self.evict(username)
