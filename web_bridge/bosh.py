"""XEP-0124 BOSH carrying XEP-0206 XMPP at ``/http-bind``: a polling transport for ``Session``.

==========================================  ================================================
the client POSTs a <body/>                  the connection manager
==========================================  ================================================
without sid (§7)                            creates a session (sid, wait, hold, requests,
                                            inactivity, polling) and a Session fed a
                                            synthetic <open/>; answers with the features
with sid and the next rid (§7, §14)         feeds each child (one element) to the Session;
                                            holds the request until output or ``wait``
rid ahead of the next one, inside window    waits for the missing ones (requests in order)
rid already answered (§14.3)                the same response again
rid outside the window, unknown sid,        <body type='terminate' condition=
wrong key (§15)                             'item-not-found'/> (§17)
xmpp:restart='true' (XEP-0206 §5)           a new stream: the Session is fed <open/>
type='terminate' (§12)                      its children, then <close/>; ends the session
no request for ``inactivity`` seconds       the client is gone: the stream is lost
==========================================  ================================================

The per-session part (held requests, the Session's transport) is ``bosh_session.py``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from aiohttp import web
from lxml import etree

from web_bridge.bosh_session import BoshSession, Terminate, body_bytes
from web_bridge.security import origin_allowed
from xmpp_server import namespaces as ns
from xmpp_server.errors import StreamError
from xmpp_server.numbers import parse_int
from xmpp_server.stream.parser import Limits, StreamParser
from xmpp_server.stream.session import Session

if TYPE_CHECKING:
    from web_bridge.app import HttpService

BODY = "{" + ns.HTTPBIND + "}body"
_MAX_RID = 2**53  # §7: the rid is below 2^53
CONTENT_TYPE = "text/xml; charset=utf-8"


class BoshHub:
    """The BOSH sessions of the HTTP service, by sid."""

    def __init__(self, service: HttpService) -> None:
        self.service = service
        self.sessions: dict[str, BoshSession] = {}
        config = service.host.config
        self.parse_limits = Limits(config.http.bosh_max_body_bytes, config.limits.max_depth + 1,
                                   config.limits.max_attributes)

    async def handle(self, request: web.Request) -> web.Response:
        config = self.service.host.config
        if not origin_allowed(request, "BOSH"):
            raise web.HTTPForbidden(text="origin not allowed\n")
        limit = config.http.bosh_max_body_bytes
        if (request.content_length or 0) > limit:
            raise web.HTTPRequestEntityTooLarge(limit, request.content_length or 0)
        data = await request.content.read(limit + 1)
        if len(data) > limit:
            raise web.HTTPRequestEntityTooLarge(limit, len(data))
        try:
            items = StreamParser(self.parse_limits, framed=True).feed(data)
        except StreamError:
            return _terminate("bad-request", status=400)
        body = items[0] if len(items) == 1 else None
        if not isinstance(body, etree._Element) or body.tag != BODY:
            return _terminate("bad-request", status=400)
        rid = _rid(body.get("rid"))
        if rid is None:
            return _terminate("bad-request", status=400)
        sid = body.get("sid")
        bosh: BoshSession | None = None
        try:
            if sid is None:
                bosh = self._create(request, body, rid)
            else:
                bosh = self.sessions.get(sid)
                if bosh is None:
                    raise Terminate("item-not-found")
            data = await bosh.request(body, rid)
        except Terminate as exc:
            if bosh is not None:
                self._kill(bosh)
            return _terminate(exc.condition)
        return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE,
                                                "Cache-Control": "no-store"})

    def _create(self, request: web.Request, body: etree._Element, rid: int) -> BoshSession:
        host = self.service.host
        to = (body.get("to") or "").lower().rstrip(".")
        if to != host.domain:
            raise Terminate("host-unknown")
        if self.service.connection_count() >= host.config.c2s.max_connections:
            raise Terminate("remote-connection-failed")
        if not host.peers.admit(request.remote or ""):
            raise Terminate("policy-violation")  # XEP-0124 §17, c2s.max_connections_per_ip
        sid = secrets.token_urlsafe(24)
        bosh = BoshSession(self, sid, request.remote or "", self.service.secure or request.secure,
                           body, rid)
        bosh.session = Session(host, bosh)
        self.sessions[sid] = bosh
        return bosh

    def _kill(self, bosh: BoshSession) -> None:
        """A terminal error: the session and its stream end now."""
        self.drop(bosh)
        if not bosh.closing:
            bosh.closing = True
            bosh.lost()

    def drop(self, bosh: BoshSession) -> None:
        if self.sessions.get(bosh.sid) is bosh:
            del self.sessions[bosh.sid]
            self.service.host.peers.release(bosh.peer_ip)
        bosh.end()

    def close_all(self, condition: str) -> None:
        """Shutdown: every stream gets a stream error, answered to its held requests."""
        for bosh in list(self.sessions.values()):
            session = bosh.session
            if session is not None and not bosh.closing:
                session.stream_error(condition, "the server is shutting down")

    def stop(self) -> None:
        for bosh in list(self.sessions.values()):
            self._kill(bosh)


def _terminate(condition: str, status: int = 200) -> web.Response:
    """§17: a terminal condition (HTTP 200 from version 1.6 on; 400 for unparseable XML)."""
    return web.Response(status=status, body=body_bytes({"type": "terminate",
                                                        "condition": condition}),
                        headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


def _rid(value: str | None) -> int | None:
    try:
        return None if value is None else parse_int(value, 1, _MAX_RID - 1)
    except ValueError:
        return None
