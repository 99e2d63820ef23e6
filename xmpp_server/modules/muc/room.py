"""XEP-0045: one room — its occupants, affiliations, subject and history — and its broadcasts.

What a room says to its occupants is built here: occupant presence in its three forms (without
real JIDs, with them for those allowed to see them (§7.2.3, §7.2.4), and the occupant's own
"self-presence" with status 110), the subject, and messages. Each form is serialised once per
broadcast (``fanout.Template``); an occupant's current presence is cached in both forms, so a
newcomer in a room of N occupants costs N byte joins, not N element builds.

The protocol flows (entering, leaving, messages, affiliation changes) live in the sibling
modules and call ``enter``, ``part``, ``remove`` and the ``broadcast_*`` methods here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from copy import deepcopy
from typing import TYPE_CHECKING, Any

from lxml import etree

from xmpp_server.jid import JID
from xmpp_server.modules.muc.config import RoomConfig
from xmpp_server.modules.muc.fanout import Target, Template
from xmpp_server.modules.muc.history import History
from xmpp_server.modules.muc.ns import OCCUPANT_ID_EL, X_USER
from xmpp_server.modules.muc.occupant import Occupant, nick_key, occupant_id
from xmpp_server.stanza import element, sub

if TYPE_CHECKING:
    from xmpp_server.modules.muc.service import MucService


class TokenBucket:
    """Messages a room accepts: ``rate`` per second on average, ``burst`` at once; 0 = no limit."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.tokens = float(self.burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Room:
    def __init__(self, service: MucService, jid: JID, config: RoomConfig, secret: str) -> None:
        self.service = service
        self.jid = jid
        self.jid_str = str(jid)
        self.config = config
        self.secret = secret
        self.affiliations: dict[str, str] = {}  # bare JID (or domain) -> owner|admin|member|outcast
        self.reserved: dict[str, str] = {}  # bare JID -> registered nick
        self.occupants: dict[str, Occupant] = {}  # nick key -> occupant
        self.by_jid: dict[JID, Occupant] = {}  # real full JID -> occupant
        self.voice_requests: dict[str, float] = {}  # occupant key -> when it last asked (§7.13)
        self._locked_until: float | None = None  # §10.1.2: created, not yet configured
        self.destroyed = False
        self.subject: str | None = None
        self.subject_by: str | None = None
        self.history = History(config.history_length)
        settings = service.settings
        self.bucket = TokenBucket(settings.rate, settings.burst)
        self.lock = asyncio.Lock()  # changes that are written to storage take turns
        self.invited: dict[str, JID] = {}  # invitee's bare JID -> inviter (for declines)
        self._forms: dict[tuple[str, bool], Template] = {}  # (nick key, with jid) -> presence
        self._targets: list[Target] | None = None

    # -- the lock of a new room (§10.1.2) ------------------------------------------------------

    @property
    def locked(self) -> bool:
        """Created and not configured yet. The lock lapses after ``[muc] lock_timeout``, as
        Prosody's does, so a room whose creator only joins becomes usable for others."""
        until = self._locked_until
        if until is not None and time.monotonic() >= until:
            self._locked_until = until = None
        return until is not None

    def lock_for(self, seconds: float) -> None:
        self._locked_until = time.monotonic() + seconds

    def unlock(self) -> None:
        self._locked_until = None

    # -- who is who ---------------------------------------------------------------------------

    def affiliation(self, jid: JID) -> str:
        """The affiliation of a user; a server-wide entry (a banned domain) counts too."""
        aff = self.affiliations.get(jid.bare_str)
        if aff is None and jid.local is not None:
            aff = self.affiliations.get(jid.domain)
        return aff or "none"

    def default_role(self, affiliation: str) -> str:
        """§5.1.3 (table 4): the role an affiliation enters with."""
        if affiliation in ("owner", "admin"):
            return "moderator"
        if affiliation == "member":
            return "participant"
        if affiliation == "none":
            return "visitor" if self.config.moderated else "participant"
        return "none"

    def by_nick(self, nick: str) -> Occupant | None:
        key = nick_key(nick)
        return None if key is None else self.occupants.get(key)

    def reserved_by(self, key: str) -> str | None:
        """The bare JID that registered a nick (by its key), if any."""
        for bare, nick in self.reserved.items():
            if nick_key(nick) == key:
                return bare
        return None

    def sees_jids(self, occupant: Occupant) -> bool:
        """§7.2.4: in a semi-anonymous room only moderators see real JIDs."""
        return self.config.whois == "anyone" or occupant.role == "moderator"

    def max_occupants(self) -> int:
        return self.config.max_occupants or self.service.settings.max_occupants

    def nick_jid(self, nick: str) -> str:
        return f"{self.jid_str}/{nick}"

    def targets(self) -> list[Target]:
        """Every session in the room (kept until someone enters or leaves)."""
        every = self._targets
        if every is None:
            every = self._targets = [t for o in self.occupants.values()
                                     for t in o.targets.values()]
        return every

    def moderators(self) -> list[Occupant]:
        return [o for o in self.occupants.values() if o.role == "moderator"]

    # -- presence -----------------------------------------------------------------------------

    def presence(self, occupant: Occupant, *, with_jid: bool, type_: str | None = None,
                 codes: Sequence[str] = (), nick: str | None = None, actor: str | None = None,
                 reason: str | None = None, base: etree._Element | None = None,
                 affiliation: str | None = None, role: str | None = None,
                 extra: etree._Element | None = None) -> etree._Element:
        """Presence from an occupant's room JID (§7.2.3), without 'to'."""
        el = element("presence", from_=self.nick_jid(occupant.nick), type=type_)
        base = occupant.presence if base is None else base
        if base is not None:
            for child in base:
                el.append(deepcopy(child))
        x = sub(el, X_USER)
        primary = occupant.primary
        item = sub(x, "item", affiliation=affiliation or self.affiliation(occupant.jid),
                   role=role or occupant.role, nick=nick,
                   jid=str(primary.jid) if with_jid and primary is not None else None)
        if actor:
            sub(item, "actor", nick=actor)
        if reason:
            sub(item, "reason", reason)
        for code in codes:
            sub(x, "status", code=code)
        if extra is not None:
            x.append(deepcopy(extra))
        sub(el, OCCUPANT_ID_EL, id=occupant.id)
        return el

    def current(self, occupant: Occupant, with_jid: bool) -> Template:
        """An occupant's current presence as others see it (cached until it changes)."""
        key = (occupant.key, with_jid)
        template = self._forms.get(key)
        if template is None:
            template = self._forms[key] = Template(self.presence(occupant, with_jid=with_jid))
        return template

    def changed(self, occupant: Occupant) -> None:
        """The occupant's presence, role, affiliation or nick changed: drop the cached forms."""
        self._forms.pop((occupant.key, False), None)
        self._forms.pop((occupant.key, True), None)
        self._targets = None

    def reset_forms(self) -> None:
        """Something every presence shows changed (the configuration)."""
        self._forms.clear()

    async def send_occupants_to(self, target: Target, viewer: Occupant) -> None:
        """§7.2.3: the presence of every other occupant, to a joining session."""
        sees = self.sees_jids(viewer)
        await self.service.fanout.send_many(
            [self.current(o, sees) for o in self.occupants.values() if o is not viewer], target)

    async def broadcast_presence(self, occupant: Occupant, *, self_codes: Sequence[str] = (),
                                 codes: Sequence[str] = (),
                                 self_targets: Iterable[Target] | None = None,
                                 cached: bool = False, **kw: Any) -> None:
        """An occupant's presence to everyone: the others (with or without real JIDs), then
        the occupant's own sessions with status 110 (§7.2.3)."""
        if cached:
            plain, full = self.current(occupant, False), self.current(occupant, True)
        else:
            plain = Template(self.presence(occupant, with_jid=False, codes=codes, **kw))
            full = Template(self.presence(occupant, with_jid=True, codes=codes, **kw))
        seeing: list[Target] = []
        blind: list[Target] = []
        for other in self.occupants.values():
            if other is not occupant:
                (seeing if self.sees_jids(other) else blind).extend(other.targets.values())
        fanout = self.service.fanout
        if blind:
            await fanout.send(plain, blind)
        if seeing:
            await fanout.send(full, seeing)
        own = list(occupant.targets.values()) if self_targets is None else list(self_targets)
        if own:
            mine = self.presence(occupant, with_jid=True, codes=("110", *self_codes, *codes),
                                 **kw)
            await fanout.send(Template(mine), own)

    # -- entering and leaving -----------------------------------------------------------------

    def admit(self, occupant: Occupant, target: Target) -> None:
        self.occupants[occupant.key] = occupant
        occupant.add(target)
        self.by_jid[target.jid] = occupant
        self.changed(occupant)
        self.service.track(target, self)

    def drop_session(self, jid: JID) -> None:
        """Forget a session without a word (it is about to enter again on a new stream)."""
        occupant = self.by_jid.pop(jid, None)
        if occupant is None:
            return
        target = occupant.remove(jid)
        if target is not None:
            self.service.untrack(target, self)
        self.changed(occupant)
        if not occupant.targets:
            self.occupants.pop(occupant.key, None)

    def rename(self, occupant: Occupant, nick: str, key: str) -> None:
        del self.occupants[occupant.key]
        self.changed(occupant)
        occupant.nick, occupant.key = nick, key
        self.occupants[key] = occupant
        self.changed(occupant)

    async def part(self, jid: JID, base: etree._Element | None = None,
                   codes: Sequence[str] = ()) -> None:
        """One session leaves (§7.14); the occupant stays while it has other sessions."""
        occupant = self.by_jid.pop(jid, None)
        if occupant is None:
            return
        target = occupant.remove(jid)
        assert target is not None
        self.service.untrack(target, self)
        self.changed(occupant)
        if occupant.targets:
            # Multi-session nick: this session gets its unavailable self-presence, the
            # others now see the presence of a remaining session.
            gone = self.presence(occupant, with_jid=True, type_="unavailable", base=base,
                                 codes=("110", *codes), role="none")
            await self.service.fanout.send_one(Template(gone), target)
            await self.broadcast_presence(occupant, cached=True)
            return
        del self.occupants[occupant.key]
        await self.broadcast_presence(occupant, type_="unavailable", base=base, codes=codes,
                                      role="none", self_targets=(target,))
        await self.service.room_emptied(self)

    async def remove(self, occupant: Occupant, codes: Sequence[str], *, actor: str | None = None,
                     reason: str | None = None, affiliation: str | None = None,
                     extra: etree._Element | None = None, emptied: bool = True) -> None:
        """Take an occupant out with all its sessions: kicked, banned, removed (§8.2, §9.1)."""
        if self.occupants.get(occupant.key) is not occupant:
            return
        del self.occupants[occupant.key]
        targets = list(occupant.targets.values())
        for target in targets:
            self.by_jid.pop(target.jid, None)
            self.service.untrack(target, self)
        self.changed(occupant)
        base = element("presence")
        await self.broadcast_presence(
            occupant, type_="unavailable", base=base, codes=codes, role="none", actor=actor,
            reason=reason, affiliation=affiliation, extra=extra, self_targets=targets)
        occupant.targets.clear()
        if emptied:
            await self.service.room_emptied(self)

    # -- messages -----------------------------------------------------------------------------

    def subject_message(self) -> Template:
        """§7.2.15: the subject, sent last on entering (an empty <subject/> when there is none)."""
        frm = self.nick_jid(self.subject_by) if self.subject_by else self.jid_str
        el = element("message", from_=frm, type="groupchat")
        sub(el, "subject", self.subject or None)
        return Template(el)

    def status_message(self, codes: Sequence[str]) -> Template:
        """A message from the room with status codes (§10.2.1: configuration changes)."""
        el = element("message", from_=self.jid_str, type="groupchat")
        x = sub(el, X_USER)
        for code in codes:
            sub(x, "status", code=code)
        return Template(el)

    async def broadcast(self, template: Template) -> None:
        await self.service.fanout.send(template, self.targets())

    def occupant_id_of(self, bare: JID) -> str:
        return occupant_id(self.secret, bare.bare_str)
