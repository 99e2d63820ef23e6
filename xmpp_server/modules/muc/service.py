"""The MUC service: the component at ``[muc] domain`` that routes stanzas to its rooms.

The router hands over every stanza addressed to the service domain (``handle``):

=========================  ===================================================================
to                         goes to
=========================  ===================================================================
the service                IQs by (type, payload) in ``service_iq`` (disco, muc#unique);
                           other messages get service-unavailable, presence is ignored
room@service (presence)    ``presence.handle``: entering (and creating), leaving, nick changes
room@service (message)     groupchat to everyone; others by their payload (``room_messages``:
                           invitations, declines)
room@service (iq)          ``room_iq`` by (type, payload): disco, muc#admin, muc#owner, MAM,
                           moderation, registration
room@service/nick          messages: private messages; IQs: ``occupant_iq`` (self-ping), else
                           forwarded to the occupant; answers to forwarded IQs go back
=========================  ===================================================================

A room that does not exist is item-not-found (presence creates it). Rooms live in memory;
persistent ones are stored with their affiliations and loaded on first use, with their recent
history from the archive. A temporary room is destroyed when its last occupant leaves.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast

from lxml import etree

from storage.rooms import StoredAffiliation, StoredRoom
from xmpp_server.config import MucConfig
from xmpp_server.errors import StanzaError
from xmpp_server.jid import JID
from xmpp_server.modules.muc import messages, occupant_iq, presence
from xmpp_server.modules.muc.archive import Writer
from xmpp_server.modules.muc.config import RoomConfig
from xmpp_server.modules.muc.fanout import Fanout, Target, Template
from xmpp_server.modules.muc.history import delayed
from xmpp_server.modules.muc.ns import USER, X_USER, q
from xmpp_server.modules.muc.room import Room
from xmpp_server.stanza import Stanza, element, sub

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.stream.session import Session

RoomIq = Callable[["MucService", Room, Stanza], Awaitable[None]]
ServiceIq = Callable[["MucService", Stanza], Awaitable[None]]
RoomMessage = Callable[["MucService", Room, Stanza, etree._Element], Awaitable[None]]
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_SESSION_KEY = "muc"  # session.data: the rooms a session is in


class MucService:
    def __init__(self, host: Host, settings: MucConfig) -> None:
        self.host = host
        self.settings = settings
        self.domain = settings.domain
        self.storage = host.storage.rooms
        self.fanout = Fanout(host)
        self.archive = Writer(host, self.storage)
        self.rooms: dict[JID, Room] = {}
        self._loading: dict[JID, asyncio.Future[Room | None]] = {}
        self.service_iq: dict[tuple[str, str], ServiceIq] = {}
        self.room_iq: dict[tuple[str, str], RoomIq] = {}
        self.occupant_iq: dict[tuple[str, str], RoomIq] = {}
        self.room_messages: dict[str, RoomMessage] = {}
        self.forwarded: dict[str, occupant_iq.Forwarded] = {}

    async def reply(self, stanza: Stanza, el: etree._Element) -> None:
        await self.host.router.reply(stanza, el)

    # -- routing ------------------------------------------------------------------------------

    async def handle(self, stanza: Stanza) -> None:
        to = stanza.to
        if to is None or stanza.frm is None:
            return
        kind = stanza.kind
        if to.local is None:
            await self._to_service(stanza)
        elif kind == "presence":
            await presence.handle(self, stanza)
        else:
            room = await self.room(to.bare)
            if room is None:
                if stanza.type not in ("error", "result"):
                    raise StanzaError("item-not-found", "no such room")
            elif kind == "message":
                if to.resource is None:
                    await messages.to_room(self, room, stanza)
                else:
                    await messages.private(self, room, stanza)
            else:
                await self._iq(room, stanza)

    async def _to_service(self, stanza: Stanza) -> None:
        if stanza.kind == "iq" and stanza.type in ("get", "set"):
            child = stanza.child
            handler = self.service_iq.get((stanza.type or "", child.tag)) if child is not None \
                else None
            if handler is None:
                raise StanzaError("service-unavailable")
            await handler(self, stanza)
        elif stanza.kind == "message" and stanza.type not in ("error", "groupchat", "headline"):
            raise StanzaError("service-unavailable", "the service takes no messages")

    async def _iq(self, room: Room, stanza: Stanza) -> None:
        type_ = stanza.type
        assert stanza.to is not None
        if type_ in ("result", "error"):
            await occupant_iq.response(self, stanza)
            return
        child = stanza.child
        if child is None:
            raise StanzaError("bad-request", "an IQ get or set needs one payload")
        key = (type_ or "", child.tag)
        if stanza.to.resource is None:
            handler = self.room_iq.get(key)
            if handler is None:
                raise StanzaError("service-unavailable")
            await handler(self, room, stanza)
        else:
            await self.occupant_iq.get(key, occupant_iq.forward)(self, room, stanza)

    # -- rooms --------------------------------------------------------------------------------

    async def room(self, jid: JID) -> Room | None:
        """The room, loaded from storage if it is persistent and not loaded yet."""
        room = self.rooms.get(jid)
        if room is not None:
            return room
        pending = self._loading.get(jid)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Room | None] = asyncio.get_running_loop().create_future()
        self._loading[jid] = future
        try:
            stored = await self.storage.get(str(jid))
            room = None if stored is None else await self._restore(stored)
            if room is not None and jid not in self.rooms:
                self.rooms[jid] = room
            room = self.rooms.get(jid, room)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: whoever waits gets it, nobody else is warned
            raise
        else:
            future.set_result(room)
        finally:
            del self._loading[jid]
        return room

    async def _restore(self, stored: StoredRoom) -> Room:
        room = Room(self, JID.parse(stored.jid), RoomConfig.from_json(stored.config),
                    stored.secret)
        room.subject, room.subject_by = stored.subject, stored.subject_by
        for a in stored.affiliations:
            room.affiliations[a.jid] = a.affiliation
            if a.nick:
                room.reserved[a.jid] = a.nick
        if room.config.archiving and room.config.history_length:
            for message in await self.storage.recent(stored.jid, room.config.history_length):
                el = etree.fromstring(message.xml, _PARSER)
                if el.get("from", "").startswith(stored.jid + "/"):  # not the room's notices
                    room.history.add(message.stanza_id, message.stored_at,
                                     delayed(Template(el), stored.jid, message.stored_at))
        return room

    def create(self, jid: JID, creator: JID, locked: bool) -> tuple[Room, bool]:
        """A new room owned by its creator (§10.1.1); (room, False) if it exists meanwhile."""
        existing = self.rooms.get(jid)
        if existing is not None:
            return existing, False
        config = RoomConfig(history_length=min(20, self.settings.max_history))
        room = Room(self, jid, config, secrets.token_urlsafe(18))
        if locked:
            room.lock_for(self.settings.lock_timeout)
        room.affiliations[creator.bare_str] = "owner"
        self.rooms[jid] = room
        return room, True

    def stored(self, room: Room) -> StoredRoom:
        return StoredRoom(
            jid=room.jid_str, config=room.config.to_json(), secret=room.secret,
            subject=room.subject, subject_by=room.subject_by,
            affiliations=[StoredAffiliation(jid, aff, room.reserved.get(jid))
                          for jid, aff in sorted(room.affiliations.items())])

    async def reconfigure(self, room: Room, new: RoomConfig) -> None:
        """A new configuration, stored first (a room that becomes persistent, with all it has)."""
        old = room.config
        room.config = new
        try:
            if new.persistent and not old.persistent:
                await self.storage.save(self.stored(room))
            elif old.persistent and not new.persistent:
                await self.storage.delete(room.jid_str, archive=False)
            elif new.persistent:
                await self.storage.set_config(room.jid_str, new.to_json())
        except BaseException:
            room.config = old
            raise
        room.history.resize(new.history_length)
        room.reset_forms()

    async def set_affiliations(self, room: Room, changes: list[StoredAffiliation]) -> None:
        """Store (if the room is persistent), then hold, several affiliation changes."""
        if room.config.persistent:
            await self.storage.set_affiliations(room.jid_str, changes)
        for change in changes:
            if change.affiliation == "none":
                room.affiliations.pop(change.jid, None)
            else:
                room.affiliations[change.jid] = change.affiliation
            if change.nick:
                room.reserved[change.jid] = change.nick
            else:
                room.reserved.pop(change.jid, None)

    async def destroy(self, room: Room, venue: str | None = None,
                      reason: str | None = None) -> None:
        """§10.9: everyone leaves (told where to go), then the room and its archive are gone."""
        if room.destroyed:
            return
        room.destroyed = True
        jid = room.jid
        if self.rooms.get(jid) is room:
            del self.rooms[jid]
        # Until storage forgets it, a lookup must not load it again: it waits, then finds none.
        gone: asyncio.Future[Room | None] = asyncio.get_running_loop().create_future()
        self._loading[jid] = gone
        try:
            await self.archive.flush()
            await self.storage.delete(room.jid_str)
        finally:
            gone.set_result(None)
            if self._loading.get(jid) is gone:
                del self._loading[jid]
        notice = element(X_USER)
        destroy = sub(notice, q(USER, "destroy"), jid=venue)
        if reason:
            sub(destroy, "reason", reason)
        for occupant in list(room.occupants.values()):
            await room.remove(occupant, (), affiliation="none", extra=destroy, emptied=False)

    async def room_emptied(self, room: Room) -> None:
        if not room.occupants and not room.destroyed and not room.config.persistent:
            await self.destroy(room)

    async def public_rooms(self) -> list[tuple[str, str]]:
        """(JID, name) of the rooms listed in the directory (§6.3)."""
        rooms: dict[str, str] = {}
        for stored in await self.storage.rooms(self.domain):
            config = RoomConfig.from_json(stored.config)
            if config.public:
                rooms[stored.jid] = config.name or stored.jid.partition("@")[0]
        for room in self.rooms.values():
            if room.config.public and not room.locked and not room.destroyed:
                rooms[room.jid_str] = room.config.name or str(room.jid.local)
            else:
                rooms.pop(room.jid_str, None)
        return sorted(rooms.items())

    # -- sessions -----------------------------------------------------------------------------

    def track(self, target: Target, room: Room) -> None:
        session = target.session
        if session is not None:
            rooms = cast("set[Room] | None", session.data.get(_SESSION_KEY))
            if rooms is None:
                rooms = set()
                session.data[_SESSION_KEY] = rooms
            rooms.add(room)

    def untrack(self, target: Target, room: Room) -> None:
        session = target.session
        if session is not None:
            rooms = cast("set[Room] | None", session.data.get(_SESSION_KEY))
            if rooms is not None:
                rooms.discard(room)

    async def session_ended(self, session: Session) -> None:
        """The stream is gone: its occupant sessions leave their rooms (§7.14)."""
        rooms = cast("set[Room] | None", session.data.get(_SESSION_KEY))
        jid = session.jid
        if not rooms or jid is None:
            return
        for room in list(rooms):
            occupant = room.by_jid.get(jid)
            if occupant is not None and occupant.targets[jid].session is session:
                await room.part(jid, element("presence"))

    async def remote_session_ended(self, session: Session) -> None:
        """A session of a cluster's other node is gone: it leaves this node's rooms."""
        jid = session.jid
        if jid is None:
            return
        for room in list(self.rooms.values()):
            if jid in room.by_jid:
                await room.part(jid, element("presence"))

    async def user_deleted(self, username: str) -> None:
        """An account is gone: its affiliations go too (a new account of that name gets none)."""
        bare = f"{username}@{self.host.domain}"
        for room in self.rooms.values():
            room.affiliations.pop(bare, None)
            room.reserved.pop(bare, None)
        await self.storage.forget_jid(bare)

    async def stop(self) -> None:
        await self.archive.flush()
