"""The outgoing link of one domain pair (RFC 6120 §10.4 for remote domains): our domain to a
remote domain, one stream at a time.

A ``Link`` queues stanzas while it connects: it resolves the remote (``resolver.py``), tries
each target and address in order, and retries while the peer refuses connections (it may be
restarting) until ``s2s.connect_timeout``; then the queue is bounced (``Federation.bounce``):
remote-server-not-found when the domain has no server or refuses us, remote-server-timeout
when it could not be reached in time. Dialback verification requests for the same pair
(``verify``, XEP-0220 §2.1.2) travel on it too.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque
from copy import deepcopy
from typing import TYPE_CHECKING

from xmpp_server.federation import dialback
from xmpp_server.federation.resolver import NotFound, Target
from xmpp_server.federation.s2s_out import Failure, OutgoingStream
from xmpp_server.federation.transport import Connection
from xmpp_server.stanza import Stanza
from xmpp_server.stream.tcp import HANDSHAKE_TIMEOUT

if TYPE_CHECKING:
    from xmpp_server.federation.manager import Federation

log = logging.getLogger(__name__)

_RETRY_MAX = 2.0  # seconds between attempts, at most


class Link:
    """Our domain ``local`` to the remote domain ``remote``: the queue and the connection."""

    def __init__(self, federation: Federation, local: str, remote: str) -> None:
        self.federation = federation
        self.local = local
        self.remote = remote
        self.stream: OutgoingStream | None = None  # established
        self.queue: deque[Stanza] = deque()
        self.closed = False
        self._task: asyncio.Task[None] | None = None
        self._verifying: dict[str, asyncio.Future[str]] = {}
        self._keys: dict[str, str] = {}  # stream id -> key, sent again on a new connection
        self._attempt_stream: OutgoingStream | None = None

    @property
    def ready(self) -> bool:
        return self.stream is not None and not self.stream.closed

    # -- stanzas ------------------------------------------------------------------------------

    def deliver(self, stanza: Stanza) -> bool:
        if self.closed:
            return False
        if self.stream is not None:
            self.stream.send(stanza.el)
            return True
        if len(self.queue) >= self.federation.config.max_queue:
            self.federation.bounce([stanza], "resource-constraint", "too many stanzas queued")
            return True
        el = deepcopy(stanza.el)  # callers may reuse theirs once routed
        self.queue.append(Stanza(el, stanza.kind, stanza.frm, stanza.to))
        self.connect()
        return True

    def connect(self) -> None:
        if self._task is None and not self.closed and self.stream is None:
            self._task = self.federation.host.spawn(self._run(), name=f"s2s-{self.remote}")

    # -- dialback verification on this link (we are the Receiving server) ---------------------

    async def verify(self, stream_id: str, key: str) -> str:
        future = self._verifying.get(stream_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._verifying[stream_id] = future
            self._keys[stream_id] = key
            current = self.stream or self._attempt_stream
            if current is not None and current.secure_features and not current.closed:
                self._send_verify(current, stream_id, key)
            else:
                self.connect()  # sent once a stream is secure (stream_secure)
        try:
            async with asyncio.timeout(self.federation.config.connect_timeout):
                return await asyncio.shield(future)
        finally:
            self._verifying.pop(stream_id, None)
            self._keys.pop(stream_id, None)

    def _send_verify(self, stream: OutgoingStream, stream_id: str, key: str) -> None:
        stream.write(dialback.element(dialback.VERIFY, self.local, self.remote, key,
                                      id=stream_id))

    def stream_secure(self, stream: OutgoingStream) -> None:
        for stream_id, key in list(self._keys.items()):
            self._send_verify(stream, stream_id, key)

    def verify_answered(self, stream_id: str, verdict: str) -> None:
        future = self._verifying.get(stream_id)
        if future is not None and not future.done():
            future.set_result("valid" if verdict == "valid" else "invalid")

    def _fail_verifications(self, text: str) -> None:
        self._keys.clear()
        for future in self._verifying.values():
            if not future.done():
                future.set_exception(ConnectionError(text))

    # -- connecting ---------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            async with asyncio.timeout(self.federation.config.connect_timeout):
                stream = await self._connect()
        except Failure as exc:
            self._failed(exc.condition, exc.text)
        except TimeoutError:
            self._failed("remote-server-timeout", f"{self.remote} could not be reached in time")
        except Exception:
            log.exception("s2s: connecting to %s failed", self.remote)
            self._failed("remote-server-timeout", "internal error while connecting")
        else:
            self._established(stream)
        finally:
            self._task = None
            self._attempt_stream = None

    async def _connect(self) -> OutgoingStream:
        resolver = self.federation.resolver
        try:
            targets = await resolver.targets(self.remote)
        except NotFound as exc:
            raise Failure("remote-server-not-found", str(exc), retry=False) from None
        delay = 0.1
        while True:
            last: Failure | None = None
            for target in targets:
                for address in await resolver.addresses(target.host):
                    try:
                        return await self._attempt(target, address)
                    except Failure as exc:
                        if not exc.retry:
                            raise
                        last = exc
            if last is None:
                raise Failure("remote-server-not-found", f"{self.remote} has no address",
                              retry=False)
            log.debug("s2s: %s unreachable (%s), retrying", self.remote, last.text)
            await asyncio.sleep(delay)  # the peer may be restarting: keep the queue a while
            delay = min(delay * 2, _RETRY_MAX)

    async def _attempt(self, target: Target, address: str) -> OutgoingStream:
        federation = self.federation
        loop = asyncio.get_running_loop()
        direct = federation.tls_direct if target.direct_tls else None
        connection: Connection | None = None

        def make(conn: Connection) -> OutgoingStream:
            stream = OutgoingStream(self, conn)
            self._attempt_stream = stream
            return stream

        try:
            _, connection = await loop.create_connection(
                lambda: Connection(make, federation.tls_client, server_hostname=self.remote,
                                   direct_tls=target.direct_tls),
                address, target.port, ssl=direct,
                server_hostname=self.remote if direct else None,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT if direct else None,
            )
        except (OSError, ssl.SSLError) as exc:
            raise Failure("remote-server-timeout", f"{address}:{target.port}: {exc}",
                          retry=True) from None
        stream = connection.session
        assert isinstance(stream, OutgoingStream)
        try:
            await stream.outcome
        except BaseException:
            connection.abort()
            raise
        return stream

    def _established(self, stream: OutgoingStream) -> None:
        if stream.closed:
            self._failed("remote-server-timeout", "the stream closed")
            return
        self.stream = stream
        stream.last_active = time.monotonic()
        queue, self.queue = self.queue, deque()
        for stanza in queue:
            stream.send(stanza.el)
            self.federation.track(stanza, self)
        self.federation.link_ready(self)

    def _failed(self, condition: str, text: str) -> None:
        log.info("s2s: %s -> %s failed: %s (%s)", self.local, self.remote, condition, text)
        self.closed = True
        queue, self.queue = list(self.queue), deque()
        self._fail_verifications(text)
        self.federation.link_closed(self)
        self.federation.bounce(queue, condition, text)

    def stream_ended(self, stream: OutgoingStream) -> None:
        if stream is self.stream:
            self.closed = True
            self._fail_verifications("the stream closed")
            self.federation.link_closed(self)

    def close(self) -> None:
        """Shutdown or idle: close the stream; queued stanzas are bounced by the caller."""
        if self._task is not None:
            self._task.cancel()
        if self.stream is not None and not self.stream.closed:
            self.stream.close()
        self.closed = True
        self._fail_verifications("the link was closed")
