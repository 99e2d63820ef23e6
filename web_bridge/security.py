"""HTTP security: response headers, CORS (Fetch standard) and the Origin check (RFC 6454).

- Every response gets ``nosniff``, ``no-referrer`` (upload URLs are capabilities: they must not
  leak through Referer), no framing, and a strict Content-Security-Policy: scripts and styles
  only from our own origin, nothing inline. A handler that sets its own header keeps it.
- Browsers may talk to WebSocket, BOSH and uploads from our own origin (the request's host, or
  ``http.public_url``) and from the origins in ``http.origins`` ("*": any). A request whose
  Origin is none of those is refused (403) where it could act on the user's behalf (RFC 6455
  §10.2 for WebSocket; BOSH likewise); elsewhere it just gets no CORS headers.
- Requests without an Origin header are not from a web page and pass.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from xmpp_server.config import HTTPConfig

_ALLOW_METHODS = "GET, HEAD, POST, PUT, OPTIONS"
_ALLOW_HEADERS = "Content-Type"
_STATIC = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lowercased (RFC 6454 §4, default ports left out)."""
    parts = urlsplit(url.lower())
    return f"{parts.scheme}://{parts.netloc}"


def own_origins(request: web.Request, config: HTTPConfig) -> set[str]:
    """Origins that are us: this request's host (behind a TLS proxy too) and the public URL."""
    host = request.host.lower()
    out = {f"http://{host}", f"https://{host}"}
    if config.public_url:
        out.add(origin_of(config.public_url))
    return out


def origin_allowed(request: web.Request, config: HTTPConfig) -> bool:
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return True
    origin = origin.strip().lower().rstrip("/")
    return ("*" in config.origins or origin in config.origins
            or origin in own_origins(request, config))


def content_security_policy(request: web.Request, config: HTTPConfig) -> str:
    """The web app's policy: no inline script or style, connections to us only.

    ``connect-src`` names the WebSocket URLs too: older browsers do not count ws(s): as
    'self'. Images and media may come from any https: server (uploads of other domains).
    """
    hosts = {request.host.lower()}
    if config.public_url:
        hosts.add(urlsplit(config.public_url.lower()).netloc)
    sources = [f"{scheme}://{host}" for host in sorted(hosts) for scheme in ("ws", "wss")]
    if config.public_url:
        sources.append(origin_of(config.public_url))  # uploads (PUT) go there
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data: blob: https:; media-src 'self' blob: https:; "
        f"connect-src 'self' {' '.join(sources)}; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def install(app: web.Application, config: HTTPConfig) -> None:
    """Add the headers hook and the CORS preflight middleware to ``app``."""

    async def headers(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in _STATIC.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy",
                                    content_security_policy(request, config))
        origin = request.headers.get(hdrs.ORIGIN)
        if (origin is not None and hdrs.ACCESS_CONTROL_ALLOW_ORIGIN not in response.headers
                and origin_allowed(request, config)):
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers.add(hdrs.VARY, "Origin")

    @web.middleware
    async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (request.method != hdrs.METH_OPTIONS or hdrs.ORIGIN not in request.headers
                or hdrs.ACCESS_CONTROL_REQUEST_METHOD not in request.headers):
            return await handler(request)
        if not origin_allowed(request, config):
            raise web.HTTPForbidden(text="origin not allowed\n")
        return web.Response(status=204, headers={
            hdrs.ACCESS_CONTROL_ALLOW_METHODS: _ALLOW_METHODS,
            hdrs.ACCESS_CONTROL_ALLOW_HEADERS: _ALLOW_HEADERS,
            hdrs.ACCESS_CONTROL_MAX_AGE: "86400",
        })

    app.on_response_prepare.append(headers)
    app.middlewares.append(preflight)
