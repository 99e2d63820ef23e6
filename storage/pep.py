"""Personal eventing (XEP-0163): each user's pubsub nodes, their configuration and items.

A node's configuration is a JSON object the feature owns; items are XML strings kept in
publication order. Publishing an id again replaces the item and makes it the newest
(XEP-0060 §7.1.2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.base import Repository, lock_user
from storage.models import pep_items, pep_nodes

Config = dict[str, Any]


@dataclass(frozen=True)
class PepItem:
    item_id: str
    xml: str
    published_at: datetime


class Published(Enum):
    """The outcome of ``PepRepository.publish``."""

    STORED = "stored"
    CREATED = "created"  # stored, in a node made for it
    NODE_FULL = "node-full"  # the node holds its limit of items and this id is new
    TOO_MANY_NODES = "too-many-nodes"  # the node would be created past the user's limit
    NO_USER = "no-user"


def _config(text: str) -> Config:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


class PepRepository(Repository):
    async def node(self, username: str, node: str) -> Config | None:
        query = sa.select(pep_nodes.c.config).where(
            pep_nodes.c.username == username, pep_nodes.c.node == node
        )
        async with self._engine.connect() as conn:
            text = (await conn.execute(query)).scalar_one_or_none()
        return None if text is None else _config(text)

    async def nodes(self, username: str) -> dict[str, Config]:
        """Every node of the user with its configuration, by name."""
        query = sa.select(pep_nodes.c.node, pep_nodes.c.config).where(
            pep_nodes.c.username == username
        )
        async with self._engine.connect() as conn:
            return {row.node: _config(row.config) for row in await conn.execute(query)}

    async def create(self, username: str, node: str, config: Config, max_nodes: int) -> Published:
        """Create an empty node (STORED if it exists already: the configuration is kept)."""
        try:
            async with self._engine.begin() as conn:
                if not await lock_user(conn, username):
                    return Published.NO_USER
                return await self._ensure_node(conn, username, node, config, max_nodes)
        except IntegrityError:  # the user was deleted meanwhile
            return Published.NO_USER

    async def configure(self, username: str, node: str, config: Config) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                pep_nodes.update()
                .where(pep_nodes.c.username == username, pep_nodes.c.node == node)
                .values(config=json.dumps(config))
            )
        return result.rowcount > 0

    async def delete(self, username: str, node: str) -> bool:
        """Delete a node and its items."""
        async with self._engine.begin() as conn:
            # Explicitly, not only by cascade: SQLite enforces it only with foreign_keys on.
            await conn.execute(
                pep_items.delete().where(pep_items.c.username == username,
                                         pep_items.c.node == node)
            )
            result = await conn.execute(
                pep_nodes.delete().where(pep_nodes.c.username == username,
                                         pep_nodes.c.node == node)
            )
        return result.rowcount > 0

    async def publish(
        self,
        username: str,
        node: str,
        item_id: str,
        xml: str,
        *,
        config: Config,
        keep: int,
        trim: bool,
        max_nodes: int,
    ) -> Published:
        """Store an item, creating the node with ``config`` if it does not exist.

        The node keeps its ``keep`` newest items: with ``trim`` older ones are dropped, without
        it a new id is refused (NODE_FULL) once ``keep`` are held.
        """
        now = datetime.now(UTC)
        try:
            async with self._engine.begin() as conn:
                if not await lock_user(conn, username):
                    return Published.NO_USER
                made = await self._ensure_node(conn, username, node, config, max_nodes)
                if made is Published.TOO_MANY_NODES:
                    return made
                where = (pep_items.c.username == username, pep_items.c.node == node)
                replaced = await conn.execute(
                    pep_items.delete().where(*where, pep_items.c.item_id == item_id)
                )
                if not trim and replaced.rowcount == 0:
                    held = await conn.execute(
                        sa.select(sa.func.count()).select_from(pep_items).where(*where)
                    )
                    if held.scalar_one() >= keep:
                        return Published.NODE_FULL
                await conn.execute(
                    pep_items.insert().values(
                        username=username, node=node, item_id=item_id, xml=xml,
                        published_at=now,
                    )
                )
                if trim:
                    newest = (
                        sa.select(pep_items.c.id).where(*where)
                        .order_by(pep_items.c.id.desc()).limit(keep)
                    )
                    await conn.execute(
                        pep_items.delete().where(*where, pep_items.c.id.not_in(newest))
                    )
                return made
        except IntegrityError:  # the user was deleted meanwhile
            return Published.NO_USER

    @staticmethod
    async def _ensure_node(conn: AsyncConnection, username: str, node: str, config: Config,
                           max_nodes: int) -> Published:
        exists = await conn.execute(
            sa.select(pep_nodes.c.node).where(
                pep_nodes.c.username == username, pep_nodes.c.node == node
            )
        )
        if exists.first() is not None:
            return Published.STORED
        count = await conn.execute(
            sa.select(sa.func.count()).select_from(pep_nodes)
            .where(pep_nodes.c.username == username)
        )
        if count.scalar_one() >= max_nodes:
            return Published.TOO_MANY_NODES
        await conn.execute(
            pep_nodes.insert().values(
                username=username, node=node, config=json.dumps(config),
                created_at=datetime.now(UTC),
            )
        )
        return Published.CREATED

    async def retract(self, username: str, node: str, item_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                pep_items.delete().where(
                    pep_items.c.username == username,
                    pep_items.c.node == node,
                    pep_items.c.item_id == item_id,
                )
            )
        return result.rowcount > 0

    async def items(self, username: str, node: str, *, ids: list[str] | None = None,
                    last: int | None = None) -> list[PepItem]:
        """Items in publication order: all, those with the given ids, or the ``last`` newest."""
        query = sa.select(pep_items.c.item_id, pep_items.c.xml, pep_items.c.published_at).where(
            pep_items.c.username == username, pep_items.c.node == node
        )
        if ids is not None:
            query = query.where(pep_items.c.item_id.in_(ids))
        if last is not None:
            query = query.order_by(pep_items.c.id.desc()).limit(last)
        else:
            query = query.order_by(pep_items.c.id)
        async with self._engine.connect() as conn:
            rows = [PepItem(r.item_id, r.xml, r.published_at) for r in await conn.execute(query)]
        return rows[::-1] if last is not None else rows

    async def find_nodes(self, usernames: list[str],
                         nodes: list[str]) -> list[tuple[str, str, Config]]:
        """(username, node, configuration) of those of ``nodes`` that ``usernames`` have."""
        query = sa.select(pep_nodes.c.username, pep_nodes.c.node, pep_nodes.c.config).where(
            pep_nodes.c.username.in_(usernames), pep_nodes.c.node.in_(nodes)
        )
        async with self._engine.connect() as conn:
            return [(row.username, row.node, _config(row.config))
                    for row in await conn.execute(query)]
