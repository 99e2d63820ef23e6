"""XEP-0198: Stream Management — acks both ways and resumption of client sessions.

==============================  ==========================================================
client sends                    server does
==============================  ==========================================================
<enable/> after bind            ``SmState`` on the session; <enabled/>, with an id and
                                ``max`` (seconds) when resumption was asked for (§3, §5)
<r/>                            <a h/>: the stanzas handled from the client (§4)
<a h/>                          drops what the client handled from the unacked queue; an
                                'h' beyond what was sent is a stream error (§4)
<resume previd h/> before bind  the old session continues on this connection: <resumed/>,
                                then the stanzas the client had not handled (§5)
==============================  ==========================================================

Both also work inline in a XEP-0388 SASL2 login (``inline.py``): <resume/> in <authenticate/>
answers with <resumed/> (or <failed/>) in <success/>, <enable/> in XEP-0386 <bind/> with
<enabled/> in <bound/>.

A session with resumption whose connection drops (not a clean close) stays bound and keeps
its presence, "detached", for ``c2s.sm_resume_timeout`` seconds; stanzas for it wait in its
queue. When any session with stream management ends, what the client never acknowledged is
handed on (``unacked.py``). At shutdown detached sessions end before storage closes.

Acknowledging is a promise (docs/guarantees.md): the <a h/> answering a client's <r/>, and the
'h' of <resumed/>, are sent only once what those stanzas caused is durable (``host.durable``:
offline storage, the delivery journal and the archive have written it). Messages waiting in a
queue are kept durable by the delivery journal (``offline/journal.py``) until acknowledged;
the queue is bounded in stanzas and bytes, and a full queue sends the account's messages to
offline storage instead of ending the session (``state.py``).

Fires ``session-resumed`` (arg: the Session) once a session continues on a new stream,
``session-detached`` (arg: ``(session, unacked)``, in a task of its own) once its connection
dropped and it waits for resumption (``unacked`` is the queue of (time sent, stanza) then),
and ``session-relieved`` (arg: the Session, in a task) once a congested client caught up.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING
from xml.sax.saxutils import quoteattr

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.modules.base import Module
from xmpp_server.modules.offline import Offline
from xmpp_server.modules.stream_mgmt import inline
from xmpp_server.modules.stream_mgmt.state import MOD, SM, SmState
from xmpp_server.modules.stream_mgmt.unacked import hand_on
from xmpp_server.numbers import parse_int

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.modules.offline.journal import Journal
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

_SM = "{" + SM + "}"


def _failed(condition: str) -> bytes:
    """§6: <failed/> with a stanza error condition."""
    return (f"<failed xmlns='{SM}'><{condition} xmlns='{ns.STANZAS_ERR}'/></failed>").encode()


def _parse_h(value: str | None) -> int | None:
    """'h' is an xs:unsignedInt."""
    if value is None:
        return None
    try:
        return parse_int(value, 0, MOD - 1)
    except ValueError:
        return None


class StreamManagement(Module):
    name = "stream_mgmt"
    xeps = (198,)

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self._resumable: dict[str, Session] = {}  # SM-ID -> session
        self._journal: Journal | None = None  # with offline storage enabled

    async def start(self) -> None:
        offline = self.host.modules.get("offline")
        self._journal = offline.journal if isinstance(offline, Offline) else None

    def setup(self) -> None:
        self.offer(self._feature)
        for name, handler in (("enable", self.enable), ("resume", self.resume),
                              ("r", self.request), ("a", self.ack)):
            self.on(f"stream-element/{_SM}{name}", handler)
        self.on("session-ended", self.ended)
        self.on("server-stopping", self.end_detached)
        inline.setup(self)


    async def stop(self) -> None:
        self.end_detached()  # normally done already, at "server-stopping"
        for session in self._resumable.values():
            if isinstance(session.sm, SmState):
                session.sm.stop()

    @staticmethod
    def _feature(session: Session, features: etree._Element) -> None:
        # §2: offered after authentication (resumption comes before bind, enabling after);
        # not once enabled (§3: only once), as after a SASL2 login that enabled it inline.
        if session.username is not None:
            if session.sm is None:
                etree.SubElement(features, _SM + "sm", nsmap={None: SM})
        else:
            inline.advertise(features)

    # -- enabling (§3) ------------------------------------------------------------------------

    def enable(self, arg: tuple[Session, etree._Element]) -> bool:
        session, el = arg
        session.send_nonza(self.do_enable(session, el))
        return True

    def do_enable(self, session: Session, el: etree._Element) -> bytes:
        """Enable stream management on ``session``; returns <enabled/> or <failed/>."""
        if session.jid is None or session.sm is not None:
            return _failed("unexpected-request")  # §3: only after binding, and only once
        c2s = self.host.config.c2s
        timeout = c2s.sm_resume_timeout
        wanted = _parse_h(el.get("max"))  # the client's preference, in seconds
        if wanted:
            timeout = min(timeout, wanted)
        resume_id = None
        if el.get("resume") in ("true", "1") and timeout > 0:
            resume_id = secrets.token_urlsafe(18)
            self._resumable[resume_id] = session
        session.sm = SmState(session, resume_id, timeout, c2s.sm_max_unacked, self._detached,
                             max_bytes=c2s.sm_max_unacked_bytes, journal=self._journal,
                             on_relieved=self._relieved)
        if resume_id is None:
            return f"<enabled xmlns='{SM}'/>".encode()
        return (f"<enabled xmlns='{SM}' id='{resume_id}' resume='true' "
                f"max='{timeout}'/>").encode()

    # -- acks (§4) ----------------------------------------------------------------------------

    async def request(self, arg: tuple[Session, etree._Element]) -> bool:
        session, _ = arg
        state = session.sm
        if isinstance(state, SmState):
            # What the client sent before its <r/> is handled; the answer waits until what
            # that caused is durable. The session's input waits meanwhile: backpressure.
            await self.host.durable()
            session.send_nonza(state.answer())
        return True  # without stream management: ignored

    def ack(self, arg: tuple[Session, etree._Element]) -> bool:
        session, el = arg
        state = session.sm
        if not isinstance(state, SmState):
            return True
        h = _parse_h(el.get("h"))
        if h is None:
            session.stream_error("invalid-xml", "'h' must be an unsigned integer")
        elif not state.ack(h):
            self._too_high(session, state, h)
        return True

    @staticmethod
    def _too_high(session: Session, state: SmState, h: int) -> None:
        """§4: an 'h' higher than the count of stanzas sent is a stream error."""
        extra = (f"<handled-count-too-high xmlns='{SM}' h='{h}' "
                 f"send-count='{state.total}'/>").encode()
        session.stream_error("undefined-condition", "acknowledged more stanzas than were sent",
                             extra)

    # -- detached sessions and resumption (§5) ------------------------------------------------

    def _detached(self, state: SmState) -> None:
        """The connection dropped: the session waits ``state.timeout`` seconds for a resume."""
        log.info("%s detached, resumable for %ds", state.session.jid, state.timeout)
        loop = asyncio.get_running_loop()
        state.expiry = loop.call_later(state.timeout, self._expire, state.session)
        if self.host.events.has("session-detached"):  # e.g. XEP-0357 push, for the unacked
            unacked = tuple((stamp, data) for stamp, data, _ in state.queue)
            self.host.spawn(self.host.events.fire("session-detached", (state.session, unacked)),
                            name="session-detached")

    def _relieved(self, state: SmState) -> None:
        """A congested client caught up: what waited for it may come (offline delivery)."""
        if self.host.events.has("session-relieved"):
            self.host.spawn(self.host.events.fire("session-relieved", state.session),
                            name="session-relieved")

    def _expire(self, session: Session) -> None:
        if session.detached and not session.closed:
            log.info("%s was not resumed in time", session.jid)
            session.close()  # ends it: session-ended, then ``ended`` below

    async def resume(self, arg: tuple[Session, etree._Element]) -> bool:
        new, el = arg
        result = await self.take_over(new, el)
        if isinstance(result, bytes):
            new.send_nonza(result)
        elif result is not None:
            result.send_nonza(self.resumed(result))
            await self.replay(result)
        return True

    async def take_over(self, new: Session, el: etree._Element) -> Session | bytes | None:
        """Continue the session <resume/> names on ``new``'s connection.

        Returns that session, or the <failed/> to answer, or None after a stream error.
        """
        if new.username is None or new.jid is not None:
            return _failed("unexpected-request")  # §5: after auth, before bind
        if not hasattr(new.transport, "session"):  # see stream.transport.Transport
            return _failed("feature-not-implemented")
        previd = el.get("previd") or ""
        old = self._resumable.get(previd)
        state = old.sm if old is not None else None
        # Someone else's SM-ID is as unknown as an expired one.
        if (old is None or not isinstance(state, SmState) or old.closed
                or old.username != new.username):
            return _failed("item-not-found")
        h = _parse_h(el.get("h"))
        if el.get("h") is not None and h is None:
            return _failed("bad-request")
        if h is not None and state.unacked_after(h) is None:
            self._too_high(new, state, h)
            return None
        # §5: a stream still open for the session is terminated with a conflict.
        old.detach("conflict", "the session was resumed on another stream")
        state.cancel_request()
        await old.settled()  # what the old connection delivered is handled (and counted)
        await self.host.durable()  # the 'h' of <resumed/> acknowledges it
        if old.closed or not old.detached:
            return _failed("item-not-found")  # ended meanwhile, or resumed twice
        if state.expiry is not None:
            state.expiry.cancel()
            state.expiry = None
        if h is not None:
            state.ack(h)
        old.resume(new)
        return old

    @staticmethod
    def resumed(session: Session) -> bytes:
        """The <resumed/> of a session ``take_over`` returned."""
        state = session.sm
        assert isinstance(state, SmState) and state.resume_id is not None
        return (f"<resumed xmlns='{SM}' previd={quoteattr(state.resume_id)} "
                f"h='{state.handled}'/>").encode()

    async def replay(self, session: Session) -> None:
        """After <resumed/>: §5, what the client has not handled, again."""
        state = session.sm
        assert isinstance(state, SmState)
        for _, data, _ in state.queue:
            session.send_nonza(data)
        state.resumed()
        log.info("%s resumed", session.jid)
        await self.host.events.fire("session-resumed", session)

    # -- the end ------------------------------------------------------------------------------

    async def ended(self, session: Session) -> None:
        state = session.sm
        if not isinstance(state, SmState):
            return
        state.stop()
        if state.resume_id is not None and self._resumable.get(state.resume_id) is session:
            del self._resumable[state.resume_id]
        queue = state.take_queue()
        journal = state.journal
        if journal is not None:
            # Journaled messages wait in offline storage, once; the rest is handed on.
            keys = [key for _, _, key in queue if key is not None]
            if keys:
                journal.dropped(state.username, keys)
                await journal.flush()
            queue = [item for item in queue if item[2] is None]
        if queue and session.jid is not None:
            await hand_on(self.host, session.jid, [(stamp, data) for stamp, data, _ in queue])

    def end_detached(self, _: object = None) -> None:
        """Shutdown: every detached session ends now (its unacked stanzas are handed on)."""
        for session in list(self._resumable.values()):
            if session.detached and not session.closed:
                session.close()
