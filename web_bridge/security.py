"""HTTP security: response headers, CORS (Fetch standard) and the Origin check (RFC 6454).

- Every response gets ``nosniff``, ``no-referrer`` (upload URLs are capabilities: they must not
  leak through Referer), no framing, and a strict Content-Security-Policy: scripts and styles
  only from our own origin, nothing inline. A handler that sets its own header keeps it.
- Browsers may talk to WebSocket, BOSH and uploads from our own origins and from the origins
  in ``http.origins`` ("*": any). A request whose Origin is none of those is refused (403)
  where it could act on the user's behalf (RFC 6455 §10.2 for WebSocket; BOSH likewise);
  elsewhere it just gets no CORS headers.
- Our own origins come from the configuration and the port really bound: ``http.public_url``,
  the server domain and the ``http.bind`` address on our port, and loopback on our port.
  Never from the request's Host header: a page of any name that resolves to us (DNS
  rebinding) sends a matching Host and Origin, and would be "us".
- Requests without an Origin header are not from a web page and pass.
- A refusal is logged once per origin, naming ``http.origins``: a web client hosted elsewhere
  (Converse.js on its own site) otherwise only shows its users a connection that keeps failing.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from xmpp_server.config import HTTPConfig

log = logging.getLogger(__name__)

_ALLOW_METHODS = "GET, HEAD, POST, PUT, OPTIONS"
_ALLOW_HEADERS = "Content-Type"
_STATIC = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
_ANY_ADDRESS = ("", "0.0.0.0", "::")
_LOGGED_MAX = 256  # refused origins remembered, so each is logged once (bounded: any page may come)


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lowercased (RFC 6454 §4, default ports left out)."""
    parts = urlsplit(url.lower())
    host = parts.hostname or ""
    return _origin(parts.scheme, f"[{host}]" if ":" in host else host, parts.port)


def _origin(scheme: str, host: str, port: int | None) -> str:
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def own_origins(config: HTTPConfig, domain: str, port: int) -> frozenset[str]:
    """The origins of pages we serve, as the configuration and the bound ``port`` say."""
    hosts = {domain.lower(), *_LOOPBACK}
    bind = config.bind.strip("[]").lower()
    if bind not in _ANY_ADDRESS:
        try:
            hosts.add(f"[{bind}]" if ipaddress.ip_address(bind).version == 6 else bind)
        except ValueError:
            hosts.add(bind)  # a host name
    out = {_origin(scheme, host, port) for host in hosts for scheme in ("http", "https")}
    if config.public_url:
        out.add(origin_of(config.public_url))
    return frozenset(out)


class Origins:
    """Who may use WebSocket, BOSH and CORS: our own origins (known once the port is bound)
    and ``http.origins``."""

    def __init__(self, config: HTTPConfig, domain: str) -> None:
        self.config = config
        self.domain = domain
        self.own: frozenset[str] = frozenset()
        self.others = frozenset(config.origins)
        self.logged: set[str] = set()

    def bound(self, port: int) -> None:
        self.own = own_origins(self.config, self.domain, port)

    def allows(self, origin: str | None) -> bool:
        """No Origin: not a web page; otherwise one of ours or of ``http.origins``."""
        if origin is None:
            return True
        origin = origin.strip().lower().rstrip("/")
        return "*" in self.others or origin in self.others or origin in self.own

    def admits(self, origin: str | None, what: str) -> bool:
        """``allows``, where a refusal stops a web client (``what``): the first refusal of an
        origin is logged, so the operator learns which origin to add."""
        if self.allows(origin):
            return True
        assert origin is not None
        origin = origin.strip().lower().rstrip("/")[:200]
        if origin not in self.logged and len(self.logged) < _LOGGED_MAX:
            self.logged.add(origin)
            log.warning("refused %s for the web page origin %r: add it to http.origins "
                        "to let a web client served there connect", what, origin)
        return False


ORIGINS_KEY: web.AppKey[Origins] = web.AppKey("origins", Origins)


def origin_allowed(request: web.Request, what: str) -> bool:
    """Whether the request's page may use ``what`` (WebSocket, BOSH); refusals are logged."""
    return request.app[ORIGINS_KEY].admits(request.headers.get(hdrs.ORIGIN), what)


def content_security_policy(origins: Origins) -> str:
    """The web app's policy: no inline script or style, connections to us only.

    ``connect-src`` names the WebSocket URLs too: older browsers do not count ws(s): as
    'self'. Images and media may come from any https: server (uploads of other domains).
    """
    config = origins.config
    # CSP host-source has no syntax for IPv6 literals (CSP3 §2.3.1): those are left out.
    hosts = sorted({urlsplit(origin).netloc for origin in origins.own})
    hosts = [host for host in hosts if "[" not in host]
    sources = [f"{scheme}://{host}" for host in hosts for scheme in ("ws", "wss")]
    if config.public_url:
        sources.append(origin_of(config.public_url))  # uploads (PUT) go there
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data: blob: https:; media-src 'self' blob: https:; "
        f"connect-src 'self' {' '.join(sources)}; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def install(app: web.Application, origins: Origins) -> None:
    """Add the headers hook and the CORS preflight middleware to ``app``."""
    app[ORIGINS_KEY] = origins

    async def headers(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in _STATIC.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", content_security_policy(origins))
        origin = request.headers.get(hdrs.ORIGIN)
        if (origin is not None and hdrs.ACCESS_CONTROL_ALLOW_ORIGIN not in response.headers
                and origins.allows(origin)):
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers.add(hdrs.VARY, "Origin")

    @web.middleware
    async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (request.method != hdrs.METH_OPTIONS or hdrs.ORIGIN not in request.headers
                or hdrs.ACCESS_CONTROL_REQUEST_METHOD not in request.headers):
            return await handler(request)
        what = f"the CORS preflight of {request.path}"
        if not origins.admits(request.headers.get(hdrs.ORIGIN), what):
            raise web.HTTPForbidden(text="origin not allowed\n")
        return web.Response(status=204, headers={
            hdrs.ACCESS_CONTROL_ALLOW_METHODS: _ALLOW_METHODS,
            hdrs.ACCESS_CONTROL_ALLOW_HEADERS: _ALLOW_HEADERS,
            hdrs.ACCESS_CONTROL_MAX_AGE: "86400",
        })

    app.on_response_prepare.append(headers)
    app.middlewares.append(preflight)
