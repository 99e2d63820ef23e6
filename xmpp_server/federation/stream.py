"""A server-to-server stream (RFC 6120 §4, content namespace jabber:server): the ``Session``
engine (parser, inbox worker, stream errors, closing) with what both directions share.

- The header declares ``jabber:server`` and the dialback prefix (XEP-0220) and names the
  domain pair: ``local`` (ours) and ``remote``. Only the receiving entity sends an id.
- ``authenticated`` maps each remote domain verified on this stream to the local domains it
  may address (dialback verifies pairs, SASL EXTERNAL the stream's pair). A stanza is routed
  only if its ``from`` and ``to`` domains are such a pair (RFC 6120 §4.9.3.9, §8.1.1.2);
  otherwise the stream is closed with ``invalid-from`` or ``improper-addressing``.
- Stanzas are turned into jabber:client on the way in and back on the way out (``wire``).
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError, StreamError
from xmpp_server.federation.wire import to_client, wire_bytes
from xmpp_server.jid import JID
from xmpp_server.stanza import Stanza
from xmpp_server.stream.parser import Limits, StreamHeader, StreamParser
from xmpp_server.stream.session import Session

if TYPE_CHECKING:
    from xmpp_server.federation.manager import Federation
    from xmpp_server.federation.transport import Connection

log = logging.getLogger(__name__)

STREAM_TAG = "{" + ns.STREAM + "}stream"
FEATURES = "{" + ns.STREAM + "}features"
STREAM_ERROR = "{" + ns.STREAM + "}error"
_SERVER = "{" + ns.SERVER + "}"
_KINDS = {_SERVER + kind: kind for kind in ("message", "presence", "iq")}


def domain_of(value: str | None) -> str:
    """A domain from a header or dialback attribute, lowercased (empty if missing or bad)."""
    if not value:
        return ""
    try:
        jid = JID.parse(value)
    except JIDError:
        return ""
    return jid.domain if jid.local is None and jid.resource is None else ""


class ServerStream(Session):
    receiving = False  # True for streams a peer opened to us (they get our stream id)
    wire_ns = ns.SERVER

    def __init__(self, federation: Federation, transport: Connection) -> None:
        super().__init__(federation.host, transport)
        self.federation = federation
        self.connection = transport
        config = federation.config
        limits = self.host.config.limits
        self.parser = StreamParser(
            Limits(config.max_stanza_bytes, limits.max_depth, limits.max_attributes))
        self.local = ""
        self.remote = ""
        self.authenticated: dict[str, set[str]] = {}
        self.bidi = False  # XEP-0288 negotiated on this stream
        self.auth_method = ""  # how the peer (inbound) or we (outbound) were last authenticated
        self.created = self.last_active = time.monotonic()

    # -- state --------------------------------------------------------------------------------

    @property
    def is_authenticated(self) -> bool:
        return bool(self.authenticated)

    def authenticate(self, remote: str, local: str) -> None:
        self.authenticated.setdefault(remote, set()).add(local)

    @property
    def peer_chain(self) -> list[bytes]:
        return self.connection.chain

    def cert_valid_for(self, domain: str) -> bool:
        return self.federation.validator.valid_for(self.connection.chain, domain)

    # -- input --------------------------------------------------------------------------------

    async def handle(self, item: StreamHeader | etree._Element | None) -> None:
        if item is None:
            self.close()
        elif isinstance(item, StreamHeader):
            self.stream_header(item)
        elif item.tag in _KINDS:
            await self.stanza(item)
        elif item.tag == STREAM_ERROR:
            self.peer_error(item)
        else:
            await self.element(item)

    def stream_header(self, header: StreamHeader) -> None:
        raise NotImplementedError

    async def element(self, el: etree._Element) -> None:
        raise NotImplementedError

    def peer_error(self, el: etree._Element) -> None:
        """RFC 6120 §4.9: the peer reports an error and closes the stream."""
        condition = next((child.tag.rpartition("}")[2] for child in el
                          if isinstance(child.tag, str)
                          and child.tag.startswith("{" + ns.STREAMS_ERR + "}")
                          and not child.tag.endswith("}text")), "undefined-condition")
        log.info("s2s stream %s -> %s: the peer sent stream error %s",
                 self.local, self.remote, condition)
        self.peer_condition = condition

    peer_condition: str | None = None

    async def stanza(self, el: etree._Element) -> None:
        frm_attr, to_attr = el.get("from"), el.get("to")
        if not frm_attr or not to_attr:
            # RFC 6120 §8.1.1.2, §8.1.2.2: between servers both addresses are required.
            raise StreamError("improper-addressing", "stanzas between servers need from and to")
        try:
            frm = JID.parse(frm_attr)
        except JIDError:
            raise StreamError("invalid-from", "malformed from address") from None
        locals_ = self.authenticated.get(frm.domain)
        if locals_ is None:
            raise StreamError("invalid-from", f"{frm.domain} is not authenticated on this stream")
        try:
            to = JID.parse(to_attr)
        except JIDError:
            raise StreamError("improper-addressing", "malformed to address") from None
        if to.domain not in locals_:
            raise StreamError("improper-addressing", f"{to.domain} is not this stream's domain")
        self.last_active = time.monotonic()
        kind = _KINDS[el.tag]
        if kind == "iq" and el.get("type") in ("result", "error"):
            self.federation.answered(el.get("id"), to)
        await self.host.router.route(Stanza(to_client(el, self.wire_ns), kind, frm, to))

    # -- output -------------------------------------------------------------------------------

    def send(self, el: etree._Element, key: str | None = None) -> None:
        """A jabber:client stanza to the peer, in the stream's namespace."""
        if not self.closed:
            self.last_active = time.monotonic()
            self.transport.write(wire_bytes(el, self.wire_ns))

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    def open_stream(self, to: str | None = None) -> None:
        """RFC 6120 §4.7: our header; the receiving entity's carries a fresh stream id."""
        local = self.local or self.host.domain
        remote = self.remote or to
        id_attr = ""
        if self.receiving:
            self.stream_id = secrets.token_hex(16)
            id_attr = f" id='{self.stream_id}'"
        to_attr = f" to='{_attr(remote)}'" if remote else ""
        header = (
            f"<?xml version='1.0'?><stream:stream xmlns='{self.wire_ns}' "
            f"xmlns:stream='{ns.STREAM}' xmlns:db='{ns.DIALBACK}' from='{_attr(local)}'"
            f"{to_attr}{id_attr} version='1.0' xml:lang='en'>"
        )
        self.header_sent = True
        self.transport.write(header.encode())

    def restart(self) -> None:
        """RFC 6120 §5.4.3.3, §6.4.6: a new stream on the same connection (after TLS, SASL)."""
        self.parser.reset()
        self.header_sent = False

    def features_element(self) -> etree._Element:
        return etree.Element(FEATURES, nsmap={None: ns.STREAM})

    # -- end ----------------------------------------------------------------------------------

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self.federation.stream_ended(self)

    def __repr__(self) -> str:
        arrow = "<-" if self.receiving else "->"
        return f"<{type(self).__name__} {self.local or '?'} {arrow} {self.remote or '?'}>"


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace("'", "&apos;").replace("<", "&lt;")
