"""XEP-0313 on the room JID: the room's archive, paged with XEP-0059 RSM.

Messages with a body that a room broadcasts are archived (when the room's
``muc#roomconfig_enablearchiving`` is on) under the XEP-0359 stanza-id the room stamped, by a
writer that batches rows off the message path. A query first waits for what is queued, so a
client finds what it has just seen. Query and result formats are the user archive's
(``urn:xmpp:mam:2``): a form with start/end/with (and before-id/after-id/ids of
mam:2#extended), RSM max/after/before, results as forwarded messages from the room, then <fin/>.

Who may read (§4.2, "the room's privileges"): anyone the room would let in — not outcasts;
in a members-only or password-protected room, members and up, or current occupants.
Filtering by a real JID ('with' a user's JID) needs the right to see real JIDs.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from lxml import etree

from storage.rooms import ArchivedMessage, ArchiveQuery, UnknownArchiveId
from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.jid import JID
from xmpp_server.modules.muc.history import parse_xep0082, xep0082
from xmpp_server.modules.muc.ns import FORWARD, MAM, RSM, X_DATA, q
from xmpp_server.modules.muc.occupant import AFFILIATION_RANK
from xmpp_server.numbers import stanza_int
from xmpp_server.stanza import Stanza, element, iq_result, sub

if TYPE_CHECKING:
    from storage.rooms import RoomRepository
    from xmpp_server.host import Host
    from xmpp_server.modules.muc.room import Room
    from xmpp_server.modules.muc.service import MucService

log = logging.getLogger(__name__)

QUERY = q(MAM, "query")
_SET = q(RSM, "set")
_FLIP = q(MAM, "flip-page")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
PAGE, MAX_PAGE = 50, 250
_FIELDS = ("with", "start", "end", "before-id", "after-id", "ids")
_FIRST_BACKOFF, _MAX_BACKOFF = 0.1, 5.0  # seconds between attempts to write a batch


class Writer:
    """Rows queued by broadcasts, written in batches by one task at a time.

    A failing write is retried, with a backoff doubling from 0.1 s to 5 s, for as long as the
    server runs: database trouble delays the archive, it does not lose it. Only when the
    server stops (``stopping()``, or the task cancelled at the end of the drain) are rows
    that still cannot be written given up, and that is logged with their number.
    """

    def __init__(self, host: Host, storage: RoomRepository) -> None:
        self.host = host
        self.storage = storage
        self._pending: list[tuple[str, ArchivedMessage]] = []
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    def add(self, room: str, message: ArchivedMessage) -> None:
        self._pending.append((room, message))
        if self._task is None:
            self._task = self.host.spawn(self._run(), name="muc-archive")

    def stopping(self, _arg: object = None) -> None:
        """The server stops: a write that fails from now on is given up instead of retried."""
        self._closing.set()

    async def _run(self) -> None:
        batch: list[tuple[str, ArchivedMessage]] = []
        try:
            while self._pending:
                await asyncio.sleep(0.002)  # let a burst gather into one transaction
                batch, self._pending = self._pending, []
                await self._write(batch)
                batch = []
        except asyncio.CancelledError:
            lost = len(batch) + len(self._pending)
            if lost:
                log.error("room archive: gave up on %d rows at shutdown", lost)
            raise
        finally:
            self._task = None

    async def _write(self, batch: list[tuple[str, ArchivedMessage]]) -> None:
        backoff = _FIRST_BACKOFF
        while True:
            try:
                await self.storage.append(batch)
                return
            except Exception:
                if self._closing.is_set():
                    log.exception("room archive: gave up on %d rows at shutdown", len(batch))
                    return
                log.exception("room archive: writing %d rows failed; retrying in %.1f s",
                              len(batch), backoff)
            try:  # the backoff, cut short when the server stops
                await asyncio.wait_for(self._closing.wait(), backoff)
            except TimeoutError:
                pass
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def flush(self) -> None:
        """Return once everything queued so far is written (or, at shutdown, given up)."""
        while self._task is not None:
            await asyncio.wait({self._task})


def may_read(room: Room, jid: JID) -> bool:
    affiliation = room.affiliation(jid)
    if affiliation == "outcast":
        return False
    if room.config.members_only or room.config.password:
        return jid in room.by_jid or AFFILIATION_RANK[affiliation] >= AFFILIATION_RANK["member"]
    return True


async def get_form(service: MucService, room: Room, stanza: Stanza) -> None:
    """§4.1.5: the fields a query may use."""
    query = element(QUERY)
    x = sub(query, X_DATA, type="form")
    sub(sub(x, "field", type="hidden", var="FORM_TYPE"), "value", MAM)
    for var in _FIELDS:
        sub(x, "field", var=var, type="list-multi" if var == "ids" else
            "jid-single" if var == "with" else "text-single")
    await service.reply(stanza, iq_result(stanza, query))


async def query(service: MucService, room: Room, stanza: Stanza) -> None:
    frm = stanza.frm
    assert frm is not None
    if not may_read(room, frm):
        raise StanzaError("forbidden", "you may not read this room's archive")
    request = stanza.child
    assert request is not None
    q_, flip = _parse(room, frm, request)
    await service.archive.flush()
    try:
        page = await service.storage.query(room.jid_str, q_)
    except UnknownArchiveId:
        raise StanzaError("item-not-found", "no such id in the archive") from None
    messages = list(reversed(page.messages)) if flip else page.messages
    queryid = request.get("queryid")
    for message in messages:
        await service.host.router.send(_result(str(frm), room.jid_str, queryid, message))
    fin = element(q(MAM, "fin"), complete="true" if page.complete else None)
    rsm = sub(fin, _SET)
    if messages:
        sub(rsm, "first", messages[0].stanza_id)
        sub(rsm, "last", messages[-1].stanza_id)
    sub(rsm, "count", str(page.count))
    await service.reply(stanza, iq_result(stanza, fin))


def _result(to: str, frm: str, queryid: str | None, message: ArchivedMessage) -> etree._Element:
    out = element("message", to=to, id=secrets.token_hex(8))
    out.set("from", frm)
    result = sub(out, q(MAM, "result"), queryid=queryid, id=message.stanza_id)
    forwarded = sub(result, q(FORWARD, "forwarded"))
    sub(forwarded, "{" + ns.DELAY + "}delay", stamp=xep0082(message.stored_at))
    forwarded.append(etree.fromstring(message.xml, _PARSER))
    return out


def _parse(room: Room, frm: JID, request: etree._Element) -> tuple[ArchiveQuery, bool]:
    """The form (§4.1) and the RSM set (XEP-0059 §2) of a query."""
    q_ = ArchiveQuery(limit=PAGE)
    x = request.find(X_DATA)
    if x is not None:
        for var, values in _fields(x).items():
            value = values[0].strip() if values else ""
            if var == "FORM_TYPE" or (not value and var != "ids"):
                continue
            if var == "with":
                _with(room, frm, value, q_)
            elif var in ("start", "end"):
                when = _datetime(value, var)
                q_.start, q_.end = (when, q_.end) if var == "start" else (q_.start, when)
            elif var == "after-id":
                q_.after = value
            elif var == "before-id":
                q_.before = value
            elif var == "ids":
                q_.ids = [v.strip() for v in values if v.strip()]
            else:
                raise StanzaError("feature-not-implemented", f"unknown field {var!r}")
    rsm = request.find(_SET)
    if rsm is not None:
        limit = rsm.findtext(q(RSM, "max"))
        if limit is not None:
            q_.limit = min(stanza_int(limit, "<max/>"), MAX_PAGE)
        after = rsm.findtext(q(RSM, "after"))
        if after is not None:
            q_.after = after.strip()
        before = rsm.find(q(RSM, "before"))
        if before is not None:
            q_.before = (before.text or "").strip()  # empty: the last page
        if rsm.find(q(RSM, "index")) is not None:
            raise StanzaError("feature-not-implemented", "paging by index is not supported")
    return q_, request.find(_FLIP) is not None


def _fields(x: etree._Element) -> dict[str, Sequence[str]]:
    out: dict[str, Sequence[str]] = {}
    for field in x.iterchildren(q("jabber:x:data", "field")):
        out[field.get("var") or ""] = [
            v.text or "" for v in field.iterchildren(q("jabber:x:data", "value"))]
    form_type = out.get("FORM_TYPE")
    if form_type and form_type[0] != MAM:
        raise StanzaError("bad-request", f"FORM_TYPE must be {MAM}")
    return out


def _with(room: Room, frm: JID, value: str, q_: ArchiveQuery) -> None:
    try:
        jid = JID.parse(value)
    except JIDError:
        raise StanzaError("jid-malformed", "'with' is not a JID") from None
    if jid.bare == room.jid and jid.resource is not None:
        q_.nick = jid.resource  # an occupant's room JID
        return
    viewer = room.by_jid.get(frm)
    allowed = (room.config.whois == "anyone" or room.affiliation(frm) in ("admin", "owner")
               or (viewer is not None and viewer.role == "moderator"))
    if not allowed:
        raise StanzaError("forbidden", "this room does not reveal real JIDs")
    q_.sender = jid.bare_str


def _datetime(value: str, var: str) -> datetime:
    when = parse_xep0082(value)
    if when is None:
        raise StanzaError("bad-request", f"{var}: not a XEP-0082 DateTime")
    return when
