"""Outbound server-to-server streams (RFC 6120): our side as the initiating entity.

An ``OutgoingStream`` is one connection's negotiation for a ``Link`` (``link.py``): STARTTLS
(required, RFC 6120 §5.3.1), then SASL EXTERNAL when offered (XEP-0178), else dialback
(XEP-0220); bidi (XEP-0288) is requested when offered, and then the peer's stanzas come back
on it. Its ``outcome`` resolves when the stream is authenticated, or fails with a ``Failure``
saying whether trying again later makes sense.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import StreamError
from xmpp_server.federation import auth, dialback
from xmpp_server.federation.stream import FEATURES, STREAM_TAG, ServerStream
from xmpp_server.stream.parser import StreamHeader

if TYPE_CHECKING:
    from xmpp_server.federation.link import Link
    from xmpp_server.federation.transport import Connection

log = logging.getLogger(__name__)

_TLS = "{" + ns.TLS + "}"


class Failure(Exception):
    """No usable stream: the stanza error ``condition`` for the queue, and whether to retry."""

    def __init__(self, condition: str, text: str, retry: bool) -> None:
        super().__init__(text)
        self.condition = condition
        self.text = text
        self.retry = retry


class OutgoingStream(ServerStream):
    def __init__(self, link: Link, transport: Connection) -> None:
        super().__init__(link.federation, transport)
        self.link = link
        self.local, self.remote = link.local, link.remote
        self.outcome: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # nobody awaits the outcome of an attempt abandoned at shutdown: mark it as seen
        self.outcome.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.sasl_done = False
        self.secure_features = False  # features seen over TLS: db:verify may be sent
        self._dialback_offered = False
        self.open_stream()

    # -- negotiation --------------------------------------------------------------------------

    def stream_header(self, header: StreamHeader) -> None:
        if header.tag != STREAM_TAG or header.default_ns != ns.SERVER:
            raise StreamError("invalid-namespace", "expected a jabber:server stream")
        if not header.attrib.get("version", "0.9").startswith("1."):
            self.fail("remote-server-not-found", "the peer cannot do STARTTLS", retry=False)
            return
        self.stream_id = header.attrib.get("id", "")
        if not self.stream_id:
            raise StreamError("undefined-condition", "no stream id")

    async def element(self, el: etree._Element) -> None:
        tag = el.tag
        if tag == FEATURES:
            await self._features(el)
        elif tag == _TLS + "proceed":
            await self._starttls()
        elif tag.startswith(_TLS):
            self.fail("remote-server-not-found", "STARTTLS failed", retry=False)
        elif tag == auth.SASL + "success":
            self.restart()
            self.sasl_done = True
            self.open_stream()
        elif tag == auth.SASL + "failure":
            if self._dialback_offered and self.federation.config.dialback:
                dialback.start(self)
            else:
                self.fail("remote-server-not-found", "certificate refused", retry=False)
        elif tag in (dialback.RESULT, dialback.VERIFY):
            dialback.answer_on_outgoing(self, el)
        else:
            raise StreamError("unsupported-stanza-type", tag)

    async def _features(self, features: etree._Element) -> None:
        if not self.transport.secure:
            if features.find(_TLS + "starttls") is None:
                self.fail("remote-server-not-found", "the peer offers no TLS", retry=False)
                return
            self.write(f"<starttls xmlns='{ns.TLS}'/>".encode())
            return
        if self.sasl_done:
            self.authenticated_by("EXTERNAL")  # the features after the restart (§6.4.6)
            return
        if self.outcome.done():
            return
        self.secure_features = True
        self.link.stream_secure(self)
        config = self.federation.config
        valid = self.cert_valid_for(self.remote)
        if config.require_valid_certs and not valid:
            self.fail("remote-server-not-found",
                      f"the certificate of {self.remote} does not validate", retry=False)
            return
        if config.bidi and features.find("{" + ns.BIDI_FEATURE + "}bidi") is not None:
            self.write(f"<bidi xmlns='{ns.BIDI}'/>".encode())  # XEP-0288 §2
            self.bidi = True
        self._dialback_offered = (
            features.find("{" + ns.DIALBACK_FEATURE + "}dialback") is not None)
        if auth.offered(features):
            auth.start(self)
        elif config.dialback and (self._dialback_offered or len(features) == 0):
            dialback.start(self)  # an empty list: a server from before the dialback feature
        else:
            self.fail("remote-server-not-found", "no authentication method in common",
                      retry=False)

    async def _starttls(self) -> None:
        self.restart()
        await self.transport.starttls()
        if self.transport.secure:
            self.open_stream()

    # -- outcome ------------------------------------------------------------------------------

    def authenticated_by(self, method: str) -> None:
        if self.outcome.done():
            return
        log.info("s2s: outbound stream %s -> %s authenticated (%s)", self.local, self.remote,
                 method)
        self.auth_method = method
        if self.bidi:
            self.authenticate(self.remote, self.local)  # XEP-0288: its stanzas come back here
        self.outcome.set_result(None)

    def fail(self, condition: str, text: str, retry: bool) -> None:
        if not self.outcome.done():
            self.outcome.set_exception(Failure(condition, text, retry))
        if not self.closed:
            self.close()

    def _end(self) -> None:
        if not self.outcome.done():
            peer = self.peer_condition
            if peer in ("host-unknown", "not-authorized", "policy-violation", "host-gone",
                        "remote-connection-failed", "invalid-from", "improper-addressing"):
                self.outcome.set_exception(
                    Failure("remote-server-not-found", f"the peer refused: {peer}", False))
            else:
                self.outcome.set_exception(Failure(
                    "remote-server-timeout", f"connection lost ({peer or 'closed'})", True))
        super()._end()
