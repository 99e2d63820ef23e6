"""XEP-0198 §4: the stream management state of one session: counters, the unacked queue, acks.

The session calls ``received`` for each stanza it handled from the client, ``sent`` for each
stanza it wrote to the client and ``lost`` when its connection goes. Sequence numbers count
modulo 2^32 (XEP-0198 §4: "h" wraps). The server asks for an ack (<r/>) once ``ACK_EVERY``
stanzas wait, or ``ACK_DELAY`` seconds after the first one; one request at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

SM = "urn:xmpp:sm:3"
MOD = 2**32
ACK_EVERY = 5
ACK_DELAY = 0.5
_REQUEST = f"<r xmlns='{SM}'/>".encode()


class SmState:
    """Per-session XEP-0198 state; ``resume_id`` is None when resumption was not enabled."""

    __slots__ = ("_awaiting", "_on_lost", "_request", "acked", "expiry", "handled",
                 "max_unacked", "queue", "resume_id", "session", "timeout", "total")

    def __init__(self, session: Session, resume_id: str | None, timeout: int, max_unacked: int,
                 on_lost: Callable[[SmState], None]) -> None:
        self.session = session
        self.resume_id = resume_id
        self.timeout = timeout  # seconds a detached session waits (the 'max' we announced)
        self.max_unacked = max_unacked
        self.handled = 0  # stanzas handled from the client: our 'h'
        self.total = 0  # stanzas sent to the client
        self.acked = 0  # the client's last 'h'
        self.queue: deque[tuple[float, bytes]] = deque()  # (time sent, stanza) not yet acked
        self.expiry: asyncio.TimerHandle | None = None  # owned by the module while detached
        self._on_lost = on_lost
        self._request: asyncio.TimerHandle | None = None
        self._awaiting = False  # an <r/> is out and unanswered

    # -- what the session reports -------------------------------------------------------------

    def received(self) -> None:
        self.handled = (self.handled + 1) % MOD

    def sent(self, data: bytes) -> None:
        self.queue.append((time.time(), data))
        self.total = (self.total + 1) % MOD
        session = self.session
        if len(self.queue) > self.max_unacked:
            # Kept stanzas are not lost: ending the session hands them on (see unacked.py).
            if session.detached:
                session.close()
            else:
                session.stream_error("policy-violation", "too many unacknowledged stanzas")
        elif not session.detached:
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
        for _ in range(count):
            self.queue.popleft()
        self.acked = h
        self._awaiting = False
        if self.queue and not self.session.detached:
            self._want_ack()
        return True

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
