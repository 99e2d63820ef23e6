"""The delivery table (RFC 6120 §10, RFC 6121 §8): where every stanza goes.

=================================  =======================================================
``to`` of the stanza               what happens
=================================  =======================================================
none, from a local client          iq: ``iq-<type>/bare/<payload>`` for the sender's account,
                                   else ``iq-<type>/host/<payload>``: the server answers for
                                   the account (§10.3.3); message: as to the sender's bare JID
                                   (§10.3.1); presence: ``presence/broadcast`` (RFC 6121 §4.2)
our domain (or domain/resource)    iq: ``iq-<type>/host/<payload>``, else service-unavailable;
                                   results/errors complete the server's own IQs;
                                   message: ``message/host``; presence: ``presence/host``
local bare JID (user@domain)       iq: ``iq-<type>/bare/<payload>``; from the account itself,
                                   as with no ``to``; else service-unavailable;
                                   message: ``message/bare``; presence: ``presence/bare``
local full JID (user@domain/res)   ``<kind>/full`` handlers first; else to the bound session;
                                   no such session: message chat/normal -> ``message/bare``
                                   (RFC 6121 §8.5.3.2.1), iq get/set -> service-unavailable,
                                   presence and the rest dropped (§8.5.3.2.2-3)
a component or MUC domain          the component's handler (``register_component``)
a user on another cluster node     ``route/cluster`` (the cluster link), when enabled
any other domain                   ``route/remote`` (server-to-server), else
                                   remote-server-not-found
=================================  =======================================================

Handlers raise ``StanzaError`` for expected failures; ``route`` turns it into the error reply.
Any other exception is logged with the stanza id and answered with internal-server-error.
Error replies are never answered with errors (RFC 6120 §8.3.1).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from lxml import etree

from storage import overloaded
from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.events import Events
from xmpp_server.jid import JID
from xmpp_server.routing.sessions import SessionRegistry
from xmpp_server.stanza import KINDS, Stanza, error_reply

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

ComponentHandler = Callable[[Stanza], Awaitable[None]]


class Router:
    def __init__(self, domain: str, events: Events, sessions: SessionRegistry) -> None:
        self.domain = domain
        self.jid = JID(None, domain)
        self.events = events
        self.sessions = sessions
        self.components: dict[str, ComponentHandler] = {}
        self._pending_iqs: dict[str, asyncio.Future[etree._Element]] = {}
        self.stats = {"routed": 0, "errors": 0}

    # -- entry points -------------------------------------------------------------------------

    async def route_from_client(self, session: Session, el: etree._Element) -> None:
        """A stanza from a bound local client: stamp ``from`` (RFC 6120 §8.1.2.1) and route."""
        kind = KINDS.get(el.tag)
        if kind is None:
            return  # unknown top-level elements were answered by the session
        jid = session.jid
        assert jid is not None
        el.set("from", str(jid))
        to_attr = el.get("to")
        try:
            to = JID.parse(to_attr) if to_attr is not None else None
        except JIDError as exc:
            await self._reply_error(Stanza(el, kind, jid, None, session), exc)
            return
        stanza = Stanza(el, kind, jid, to, session)
        await self.route(stanza, outbound=True)

    async def route(self, stanza: Stanza, outbound: bool = False) -> None:
        """Deliver one stanza; ``outbound`` fires the ``pre-<kind>`` hooks of local senders."""
        self.stats["routed"] += 1
        try:
            if outbound and await self.events.fire("pre-" + stanza.kind, stanza):
                return
            await self._route(stanza)
        except StanzaError as exc:
            await self._reply_error(stanza, exc)
        except Exception as exc:
            if overloaded(exc):  # shed: the sender may try again (RFC 6120 §8.3.3.18, wait)
                self.stats["shed"] = self.stats.get("shed", 0) + 1
                log.warning("storage busy: %s id=%s refused", stanza.kind, stanza.id)
                await self._reply_error(stanza, StanzaError(
                    "resource-constraint", "the server is busy; try again shortly"))
                return
            log.exception("error routing %s id=%s", stanza.kind, stanza.id)
            await self._reply_error(stanza, StanzaError("internal-server-error"))

    async def send(self, el: etree._Element) -> None:
        """Route a stanza the server itself originates (its ``from`` is set by the caller)."""
        kind = KINDS[el.tag]
        frm = el.get("from")
        to = el.get("to")
        await self.route(
            Stanza(el, kind, JID.parse(frm) if frm else self.jid, JID.parse(to) if to else None)
        )

    async def reply(self, stanza: Stanza, el: etree._Element) -> None:
        """Answer a stanza: straight to a local sender's session, else through the table."""
        origin = stanza.origin
        if origin is not None and stanza.frm is not None and stanza.frm == origin.jid:
            origin.send(el)
        else:
            await self.send(el)

    async def iq(self, el: etree._Element, timeout: float = 30.0) -> etree._Element:
        """Send an IQ from the server and wait for its result or error."""
        iq_id = el.get("id") or secrets.token_hex(8)
        el.set("id", iq_id)
        future: asyncio.Future[etree._Element] = asyncio.get_running_loop().create_future()
        self._pending_iqs[iq_id] = future
        try:
            await self.send(el)
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending_iqs.pop(iq_id, None)

    # -- the table ----------------------------------------------------------------------------

    async def _route(self, stanza: Stanza) -> None:
        to = stanza.to
        kind = stanza.kind
        if to is None:
            if stanza.origin is None:
                return
            await self._to_account(stanza, self._sender_bare(stanza), implicit=True)
        elif to.domain == self.domain:
            if to.local is None:
                await self._to_host(stanza)
            elif to.resource is None:
                await self._to_account(stanza, to, implicit=False)
            else:
                await self._to_full(stanza, to)
        elif to.domain in self.components:
            await self.components[to.domain](stanza)
        elif await self.events.fire("route/cluster", stanza):
            return
        elif not await self.events.fire("route/remote", stanza) and kind != "presence":
            raise StanzaError("remote-server-not-found")

    def _sender_bare(self, stanza: Stanza) -> JID:
        assert stanza.frm is not None
        return stanza.frm.bare

    @staticmethod
    def _from_account(stanza: Stanza, bare: JID) -> bool:
        """Whether a local client of the account ``bare`` sent the stanza."""
        frm = stanza.frm
        return stanza.origin is not None and frm is not None and frm.bare == bare

    async def _to_host(self, stanza: Stanza) -> None:
        kind, type_ = stanza.kind, stanza.type
        if kind == "iq":
            if type_ in ("result", "error"):
                future = self._pending_iqs.get(stanza.id or "")
                if future is not None and not future.done():
                    future.set_result(stanza.el)
                return
            if not await self._fire_iq(stanza, "host"):
                raise StanzaError("service-unavailable")
        elif (not await self.events.fire(kind + "/host", stanza)
              and kind == "message" and type_ in (None, "normal", "chat")):
            raise StanzaError("service-unavailable")

    async def _to_account(self, stanza: Stanza, bare: JID, implicit: bool) -> None:
        kind = stanza.kind
        if kind == "iq":
            if stanza.type in ("result", "error"):
                await self.events.fire("iq-response/bare", stanza)
                return
            if await self._fire_iq(stanza, "bare"):
                return
            # RFC 6120 §10.3.3: what an account asks with no 'to' (or its own bare JID) the
            # server handles on its behalf: the session of RFC 3921, ping, time, version...
            if self._from_account(stanza, bare) and await self._fire_iq(stanza, "host"):
                return
            raise StanzaError("service-unavailable")
        elif kind == "presence" and implicit:
            await self.events.fire("presence/broadcast", stanza)
        else:
            if implicit:
                stanza.to = bare
            if not await self.events.fire(kind + "/bare", stanza) and kind == "message":
                raise StanzaError("service-unavailable")

    async def _to_full(self, stanza: Stanza, to: JID) -> None:
        kind = stanza.kind
        if await self.events.fire(kind + "/full", stanza):
            return
        session = self.sessions.get(to)
        if session is not None:
            session.send(stanza.el)
            return
        type_ = stanza.type
        if kind == "message":
            if type_ in (None, "normal", "chat"):
                await self.events.fire("message/bare", stanza)
            elif type_ == "groupchat":
                raise StanzaError("service-unavailable")
        elif kind == "iq" and type_ in ("get", "set"):
            raise StanzaError("service-unavailable")
        elif kind == "presence" and type_ in ("subscribe", "subscribed", "unsubscribe",
                                              "unsubscribed", "probe"):
            await self.events.fire("presence/bare", stanza)

    async def _fire_iq(self, stanza: Stanza, target: str) -> bool:
        child = stanza.child
        if child is None:
            # RFC 6120 §8.2.3: a get or set carries exactly one payload.
            raise StanzaError("bad-request", "an IQ get or set needs one payload element")
        return await self.events.fire(f"iq-{stanza.type}/{target}/{child.tag}", stanza)

    # -- errors -------------------------------------------------------------------------------

    async def _reply_error(self, stanza: Stanza, error: StanzaError) -> None:
        if stanza.type in ("error", "result") or stanza.frm is None:
            return
        self.stats["errors"] += 1
        reply = error_reply(stanza, error)
        if stanza.to is None:
            reply.set("from", str(stanza.frm.bare) if stanza.origin else self.domain)
        origin = stanza.origin
        if origin is not None and stanza.frm == origin.jid:
            origin.send(reply)  # straight back to the sender, even if its address was bad
            return
        try:
            frm = JID.parse(reply.get("from") or self.domain)
        except JIDError:
            frm = self.jid
        await self.route(Stanza(reply, stanza.kind, frm, stanza.frm))
