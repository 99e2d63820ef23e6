"""XEP-0313: Message Archive Management for users' 1:1 messages, paged with XEP-0059 RSM.

What is archived (§6.1.1): normal and chat messages with a <body/> that a user sends or
receives; XEP-0334 <no-store/> and <no-permanent-store/> keep a message out, <store/> lets one
without a body in. The user's XEP-0441 preferences decide per contact (the configured default
until they set some); <store/> does not override them.

- Incoming: the messages module calls ``incoming`` once a message was written to the user's
  sessions or stored offline, with the XEP-0359 stanza-id it stamped for the user: that id is
  the archive id (§3.5), so what the client got names its archive entry.
- Outgoing: ``pre-message`` archives what a user's client sends, under a fresh id, after the
  filters (blocking) had their say. §3.5: the contact must not get that id, but the user's
  other clients SHOULD, in their XEP-0280 carbon copy: so the id is added as a <stanza-id/>
  before carbons copies the message (priority -5 against its -10) and taken off again just
  before routing (-100). A message to oneself is archived once, by the incoming side.

Neither path waits for the database: rows go to ``ArchiveWriter`` (writer.py). Queries, the
form, metadata and preferences are answered on the user's bare JID; only the owner may use
them (§8.1: forbidden for anyone else). With ``[mam] retention`` set, a task owned by this
module deletes older messages every ``cleanup_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from lxml import etree

from storage.archive import ArchiveEntry, ArchivePrefs, UnknownArchiveId
from xmpp_server import namespaces as ns
from xmpp_server.errors import StanzaError
from xmpp_server.modules.base import Module
from xmpp_server.modules.mam.prefs import PREFS, decide, parse_prefs, prefs_element
from xmpp_server.modules.mam.query import (
    METADATA,
    QUERY,
    fin_element,
    form_element,
    metadata_element,
    parse_query,
    result_message,
)
from xmpp_server.modules.mam.writer import ArchiveWriter, Pending
from xmpp_server.modules.messages import Messages, new_stanza_id, strip_stanza_ids
from xmpp_server.stanza import Stanza, iq_result

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.jid import JID
    from xmpp_server.modules.disco import DiscoReply

log = logging.getLogger(__name__)

_BODY = "{" + ns.CLIENT + "}body"
_STORE = "{" + ns.HINTS + "}store"
_NOT_STORED = frozenset(("{" + ns.HINTS + "}no-store", "{" + ns.HINTS + "}no-permanent-store"))
_STANZA_ID = "{" + ns.SID + "}stanza-id"
_SID_NSMAP = {None: ns.SID}
_KEPT = frozenset((_BODY, _STORE))
_OTHER_TYPES = frozenset(("headline", "groupchat", "error"))  # RFC 6121 §5.2.2
_FLUSH_TIMEOUT = 10.0  # seconds a query waits for the archive writer


def archivable(el: etree._Element) -> bool:
    """§6.1.1 with the XEP-0334 hints: a body (or <store/>) and no <no-store/>."""
    keep = False
    for child in el:
        tag = child.tag
        if tag in _NOT_STORED:
            return False
        if tag in _KEPT:
            keep = True
    return keep


class Mam(Module):
    name = "mam"
    xeps = (313, 59, 441)
    depends = ("messages",)

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.config = host.config.mam
        self.writer = ArchiveWriter(self._store)
        self._sweeper: asyncio.Task[None] | None = None
        self._messages: Messages | None = None

    def setup(self) -> None:
        messages = self.host.modules.get("messages")
        assert isinstance(messages, Messages)
        messages.accepted.append(self.incoming)
        self._messages = messages
        # After the filters (blocking: 100), before carbons copies the message (-10).
        self.on("pre-message", self.outgoing, priority=-5)
        self.on("pre-message", self.unstamp, priority=-100)
        self.on_iq("set", "bare", QUERY, self.query)
        self.on_iq("get", "bare", QUERY, self.form)
        self.on_iq("get", "bare", METADATA, self.metadata)
        self.on_iq("get", "bare", PREFS, self.get_prefs)
        self.on_iq("set", "bare", PREFS, self.set_prefs)
        self.on("disco-info/account", self.account_features)
        self.host.barriers.append(self.writer.flush)  # archived before acknowledged
        self.host.backlogs.append(self.writer)

    def teardown(self) -> None:
        if self._messages is not None and self.incoming in self._messages.accepted:
            self._messages.accepted.remove(self.incoming)
        if self.writer.flush in self.host.barriers:
            self.host.barriers.remove(self.writer.flush)
        if self.writer in self.host.backlogs:
            self.host.backlogs.remove(self.writer)
        super().teardown()

    async def start(self) -> None:
        self.writer.start()
        if self.config.retention:
            self._sweeper = asyncio.get_running_loop().create_task(
                self._sweep_forever(), name="mam-retention"
            )

    async def stop(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
        await self.writer.stop()

    # -- archiving (the routing path: plain functions, no I/O) ----------------------------------

    def outgoing(self, stanza: Stanza) -> None:
        """A message a local user's client sends, archived before it is routed."""
        frm, to, el = stanza.frm, stanza.to, stanza.el
        if stanza.type in _OTHER_TYPES or frm is None or frm.local is None or to is None:
            return  # no 'to': to the sender's own account, archived as incoming
        if to.local == frm.local and to.domain == frm.domain:
            return  # to oneself: stored once (§6.1.1), by the incoming side
        if not archivable(el):
            return
        # XEP-0359 §4: ids claiming to be from the sender's archive are not the sender's to give.
        by = frm.bare_str
        strip_stanza_ids(el, by)
        entry = ArchiveEntry(new_stanza_id(), datetime.now(UTC), to.bare_str, "out",
                             etree.tostring(el, encoding="unicode"), to.resource)
        self.writer.add(frm.local, entry)
        if len(self.host.sessions.of_user(frm.local)) > 1:  # else there is nobody to copy to
            # For the carbon copies (XEP-0280 §8) made next; taken off again by unstamp.
            etree.SubElement(el, _STANZA_ID, {"id": entry.id, "by": by}, nsmap=_SID_NSMAP)

    def unstamp(self, stanza: Stanza) -> None:
        """§3.5: the sender's archive id does not go to the contact."""
        frm = stanza.frm
        if stanza.type not in _OTHER_TYPES and frm is not None and frm.local is not None:
            to = stanza.to
            if to is not None and not (to.local == frm.local and to.domain == frm.domain):
                strip_stanza_ids(stanza.el, frm.bare_str)

    def incoming(self, stanza: Stanza, stanza_id: str) -> None:
        """A message written to a local user or stored for them, with our XEP-0359 id."""
        to, el = stanza.to, stanza.el
        if to is None or to.local is None or not archivable(el):
            return
        frm = stanza.frm
        with_bare = frm.bare_str if frm is not None else self.host.domain
        entry = ArchiveEntry(stanza_id, datetime.now(UTC), with_bare, "in",
                             etree.tostring(el, encoding="unicode"),
                             frm.resource if frm is not None else None)
        self.writer.add(to.local, entry)

    async def _store(self, batch: list[Pending]) -> None:
        """The writer's batch: the owners' preferences applied, then one transaction."""
        archive = self.host.storage.archive
        prefs = await archive.get_prefs_of(p.owner for p in batch)
        default = ArchivePrefs(self.config.default_policy)
        keep = [
            (p.owner, p.entry) for p in batch
            if await self._wanted(p.owner, prefs.get(p.owner, default), p.entry)
        ]
        await archive.append(keep)

    async def _wanted(self, owner: str, prefs: ArchivePrefs, entry: ArchiveEntry) -> bool:
        bare = entry.with_jid
        full = f"{bare}/{entry.with_resource}" if entry.with_resource else bare
        decision = decide(prefs, bare, full)
        if decision is not None:
            return decision
        # "roster": archived if the contact is in the user's roster (XEP-0441 §2.1.1).
        if entry.with_jid == f"{owner}@{self.host.domain}":
            return True
        return await self.host.storage.roster.get_item(owner, entry.with_jid) is not None

    # -- retention ------------------------------------------------------------------------------

    async def expire(self) -> int:
        """Delete messages older than ``[mam] retention`` from every archive; returns how many."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.config.retention)
        return await self.host.storage.archive.expire(cutoff)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                removed = await self.expire()
                if removed:
                    log.info("archive retention: deleted %d messages", removed)
            except Exception:
                log.exception("archive retention sweep failed")
            await asyncio.sleep(self.config.cleanup_interval)

    # -- the protocol ---------------------------------------------------------------------------

    def _owner(self, stanza: Stanza) -> str:
        """The archive's owner: the requester themself, or forbidden (§8.1)."""
        frm = stanza.frm
        assert frm is not None
        target: JID = stanza.to or frm.bare
        if frm.local is None or frm.domain != self.host.domain or target.bare != frm.bare:
            raise StanzaError("forbidden", "only the owner may use an archive")
        return frm.local

    async def query(self, stanza: Stanza) -> bool:
        owner = self._owner(stanza)
        assert stanza.child is not None and stanza.frm is not None
        request = parse_query(stanza.child, self.config.page_size, self.config.max_page_size)
        with_jid = request.with_jid
        try:  # what the client was just sent is in the archive
            await asyncio.wait_for(self.writer.flush(), _FLUSH_TIMEOUT)
        except TimeoutError:
            raise StanzaError("resource-constraint",
                              "the archive is busy writing; try again shortly") from None
        try:
            page = await self.host.storage.archive.query(
                owner,
                with_jid=with_jid.bare_str if with_jid is not None else None,
                with_resource=with_jid.resource if with_jid is not None else None,
                start=request.start, end=request.end, after=request.after,
                before=request.before, ids=request.ids, limit=request.limit,
                backwards=request.backwards,
            )
        except UnknownArchiveId as exc:
            raise StanzaError("item-not-found", f"no message {exc.args[0]!r} in the archive") \
                from None
        to, frm = str(stanza.frm), f"{owner}@{self.host.domain}"
        entries = list(reversed(page.entries)) if request.flip else page.entries
        for entry in entries:
            await self._send(stanza, result_message(to, frm, request.queryid, entry))
        # §4.3: the <fin/> comes after the last result.
        await self.host.router.reply(stanza, iq_result(stanza, fin_element(page.entries,
                                                                           page.complete)))
        return True

    async def _send(self, stanza: Stanza, el: etree._Element) -> None:
        origin = stanza.origin
        if origin is not None and stanza.frm == origin.jid:
            origin.send(el)
        else:
            await self.host.router.send(el)

    async def form(self, stanza: Stanza) -> bool:
        self._owner(stanza)
        await self.host.router.reply(stanza, iq_result(stanza, form_element()))
        return True

    async def metadata(self, stanza: Stanza) -> bool:
        owner = self._owner(stanza)
        await self.writer.flush()
        first, last = await self.host.storage.archive.bounds(owner)
        await self.host.router.reply(stanza, iq_result(stanza, metadata_element(first, last)))
        return True

    async def get_prefs(self, stanza: Stanza) -> bool:
        owner = self._owner(stanza)
        prefs = await self._prefs(owner)
        await self.host.router.reply(stanza, iq_result(stanza, prefs_element(prefs)))
        return True

    async def set_prefs(self, stanza: Stanza) -> bool:
        owner = self._owner(stanza)
        assert stanza.child is not None
        prefs = parse_prefs(stanza.child, await self._prefs(owner))
        # Messages accepted before the change are decided by the preferences they came under.
        await self.writer.flush()
        if not await self.host.storage.archive.set_prefs(owner, prefs):
            raise StanzaError("item-not-found", "no such account")
        await self.host.router.reply(stanza, iq_result(stanza, prefs_element(prefs)))
        return True

    async def _prefs(self, owner: str) -> ArchivePrefs:
        stored = await self.host.storage.archive.get_prefs(owner)
        return stored if stored is not None else ArchivePrefs(self.config.default_policy)

    def account_features(self, reply: DiscoReply) -> None:
        # §7: on the archiving JID, the user's bare JID.
        reply.feature(ns.MAM)
        reply.feature(ns.MAM_EXTENDED)
