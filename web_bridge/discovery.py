"""XEP-0156: Discovering Alternative XMPP Connection Methods, the HTTP lookup method.

``/.well-known/host-meta`` (XRD, RFC 6415) and ``/.well-known/host-meta.json`` (JRD) name our
BOSH and WebSocket endpoints. The URLs are built from ``http.public_url`` when it is set (the
address behind a TLS proxy), else from the request itself. Both documents are public and
readable from any origin (§3: web clients on other domains look them up).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web
from lxml import etree

from xmpp_server.config import HTTPConfig

XRD = "http://docs.oasis-open.org/ns/xri/xrd-1.0"
BOSH_REL = "urn:xmpp:alt-connections:xbosh"
WEBSOCKET_REL = "urn:xmpp:alt-connections:websocket"
_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=3600"}


def endpoints(request: web.Request, config: HTTPConfig) -> list[tuple[str, str]]:
    """(rel, href) of each connection method."""
    base = config.public_url or f"{request.scheme}://{request.host}"
    parts = urlsplit(base)
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    path = parts.path.rstrip("/")
    return [
        (BOSH_REL, f"{base}/http-bind"),
        (WEBSOCKET_REL, f"{ws_scheme}://{parts.netloc}{path}/xmpp-websocket"),
    ]


async def host_meta(request: web.Request) -> web.Response:
    from web_bridge.app import HOST_KEY

    xrd = etree.Element(f"{{{XRD}}}XRD", nsmap={None: XRD})
    for rel, href in endpoints(request, request.app[HOST_KEY].config.http):
        etree.SubElement(xrd, f"{{{XRD}}}Link", rel=rel, href=href)
    body = etree.tostring(xrd, xml_declaration=True, encoding="utf-8")
    return web.Response(body=body, content_type="application/xrd+xml", charset="utf-8",
                        headers=_HEADERS)


async def host_meta_json(request: web.Request) -> web.Response:
    from web_bridge.app import HOST_KEY

    links = [{"rel": rel, "href": href}
             for rel, href in endpoints(request, request.app[HOST_KEY].config.http)]
    return web.json_response({"links": links}, headers=_HEADERS)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/.well-known/host-meta", host_meta)
    app.router.add_get("/.well-known/host-meta.json", host_meta_json)
