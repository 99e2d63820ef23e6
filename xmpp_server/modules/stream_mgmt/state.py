"""XEP-0198 §4: the stream management state of one session: counters, the unacked queue, acks.

The session calls ``received`` for each stanza it handled from the client, ``sent`` for each
stanza it wrote to the client and ``lost`` when its connection goes. Sequence numbers count
modulo 2^32 (XEP-0198 §4: "h" wraps). The server asks for an ack (<r/>) once ``ACK_EVERY``
stanzas wait, or ``ACK_DELAY`` seconds after the first one; one request at a time.

The queue is bounded in stanzas and in bytes, twice:

==============================  ==============================================================
unacknowledged                  what happens
==============================  ==============================================================
``max_unacked`` stanzas or      the session is ``congested``: messages for the account wait in
``max_bytes`` bytes             offline storage instead of growing the queue; once the client
                                has acknowledged half of it, ``on_relieved`` (offline delivery
                                resumes, paced the same way)
twice that (presence, IQs and   the session ends (a stream error; a detached one just ends):
room traffic still come)        what it held goes to offline storage once (``unacked.py``)
==============================  ==============================================================

Messages with a ``key`` (the XEP-0359 id of a normal or chat message) are reported to the
delivery journal (``offline/journal.py``) as they are queued and as they are acknowledged, so
that they are durable while they wait for the client.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xmpp_server.modules.offline.journal import Journal
    from xmpp_server.stream.session import Session

Queued = tuple[float, bytes, str | None]  # (time sent, stanza, journal key)

SM = "urn:xmpp:sm:3"
MOD = 2**32
ACK_EVERY = 5
ACK_DELAY = 0.5
_REQUEST = f"<r xmlns='{SM}'/>".encode()


class SmState:
    """Per-session XEP-0198 state; ``resume_id`` is None when resumption was not enabled."""

    __slots__ = ("_awaiting", "_on_lost", "_on_relieved", "_request", "acked", "expiry",
                 "handled", "journal", "max_bytes", "max_unacked", "queue", "queued_bytes",
                 "resume_id", "session", "timeout", "total", "username")

    def __init__(self, session: Session, resume_id: str | None, timeout: int, max_unacked: int,
                 on_lost: Callable[[SmState], None], max_bytes: int = 10 * 2**20,
                 journal: Journal | None = None,
                 on_relieved: Callable[[SmState], None] | None = None) -> None:
        self.session = session
        self.username = session.username or ""
        self.resume_id = resume_id
        self.timeout = timeout  # seconds a detached session waits (the 'max' we announced)
        self.max_unacked = max_unacked
        self.max_bytes = max_bytes
        self.journal = journal
        self.handled = 0  # stanzas handled from the client: our 'h'
        self.total = 0  # stanzas sent to the client
        self.acked = 0  # the client's last 'h'
        self.queue: deque[Queued] = deque()  # not yet acknowledged
        self.queued_bytes = 0
        self.expiry: asyncio.TimerHandle | None = None  # owned by the module while detached
        self._on_lost = on_lost
        self._on_relieved = on_relieved
        self._request: asyncio.TimerHandle | None = None
        self._awaiting = False  # an <r/> is out and unanswered

    # -- what the session reports -------------------------------------------------------------

    def received(self) -> None:
        self.handled = (self.handled + 1) % MOD

    def sent(self, data: bytes, key: str | None = None) -> None:
        queue = self.queue
        queue.append((time.time(), data, key))
        self.queued_bytes += len(data)
        self.total = (self.total + 1) % MOD
        if key is not None and self.journal is not None:
            self.journal.hold(self.username, key, data)
        session = self.session
        if len(queue) >= self.max_unacked or self.queued_bytes >= self.max_bytes:
            if not session.congested:
                session.congested = True
                session.host.sessions.changed(session)
            if len(queue) > 2 * self.max_unacked or self.queued_bytes > 2 * self.max_bytes:
                # Kept stanzas are not lost: ending the session hands them on (unacked.py).
                if session.detached:
                    session.close()
                else:
                    session.stream_error("policy-violation", "too many unacknowledged stanzas")
                return
        if not session.detached:
            self._want_ack()

    def lost(self, reason: str | None) -> bool:
        """§5: keep the session for resumption unless the stream was closed on purpose.

        A clean close ends the session (XEP-0198 §7); so does any stream error but the one
        for a client that stopped answering, which is the network going away.
        """
        self.cancel_request()
        if self.resume_id is None or reason not in (None, "connection-timeout"):
            return False
        self._on_lost(self)
        return True

    # -- acks ---------------------------------------------------------------------------------

    def unacked_after(self, h: int) -> int | None:
        """How many queued stanzas the client's 'h' acknowledges; None if more than were sent."""
        count = (h - self.acked) % MOD
        return count if count <= len(self.queue) else None

    def ack(self, h: int) -> bool:
        """§4: drop what the client has handled; False if 'h' is beyond what was sent."""
        count = self.unacked_after(h)
        if count is None:
            return False
        queue = self.queue
        keys: list[str] = []
        released = 0
        for _ in range(count):
            _, data, key = queue.popleft()
            released += len(data)
            if key is not None:
                keys.append(key)
        self.queued_bytes -= released
        if keys and self.journal is not None:
            self.journal.acked(self.username, keys)
        self.acked = h
        self._awaiting = False
        session = self.session
        if (session.congested and len(queue) <= self.max_unacked // 2
                and self.queued_bytes <= self.max_bytes // 2):
            session.congested = False
            session.host.sessions.changed(session)
            if self._on_relieved is not None:
                self._on_relieved(self)
        if queue and not session.detached:
            self._want_ack()
        return True

    def take_queue(self) -> list[Queued]:
        """Empty the queue (the session ends): what the client never acknowledged."""
        queue = list(self.queue)
        self.queue.clear()
        self.queued_bytes = 0
        return queue

    def answer(self) -> bytes:
        """The <a/> for a request from the client."""
        return f"<a xmlns='{SM}' h='{self.handled}'/>".encode()

    def resumed(self) -> None:
        """The queue was resent on a new connection: ask for its ack soon."""
        self._awaiting = False
        if self.queue:
            self._want_ack()

    def _want_ack(self) -> None:
        if self._awaiting:
            return
        if len(self.queue) >= ACK_EVERY:
            self._send_request()
        elif self._request is None:
            self._request = asyncio.get_running_loop().call_later(ACK_DELAY, self._send_request)

    def _send_request(self) -> None:
        self.cancel_request()
        session = self.session
        if self._awaiting or not self.queue or session.closed or session.detached:
            return
        self._awaiting = True
        session.send_nonza(_REQUEST)

    def cancel_request(self) -> None:
        if self._request is not None:
            self._request.cancel()
            self._request = None
        self._awaiting = False

    def stop(self) -> None:
        """Cancel every timer (the session ended or the server stops)."""
        self.cancel_request()
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
