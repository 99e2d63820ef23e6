"""XEP-0363 HTTP File Upload, the HTTP half: PUT into a slot, GET the file back.

The slots come from ``xmpp_server/modules/http_upload.py``. A PUT must carry the slot's
signature and expiry (403 if wrong, 410 once expired), its exact size (413 larger, 400
otherwise) and its content type (§6: 400 on mismatch); a slot takes one PUT (409 after).
The file is streamed to a temporary file and linked into place, so a GET never sees half a
file. A GET serves the stored type with ``nosniff``, a sandboxing CSP and ``attachment``
unless it is an image a browser may show (SVG is not); any other path is 404.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from aiohttp import web

from xmpp_server.modules.http_upload import ID_PATTERN, HttpUpload, is_inline
from xmpp_server.numbers import parse_int

if TYPE_CHECKING:
    from storage.uploads import Upload
    from xmpp_server.host import Host

_CHUNK = 65536
_FILE_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"


def _module(request: web.Request) -> HttpUpload:
    from web_bridge.app import HOST_KEY

    host: Host = request.app[HOST_KEY]
    module = host.modules.get(HttpUpload.name)
    if not isinstance(module, HttpUpload):
        raise web.HTTPNotFound()
    return module


async def _slot(module: HttpUpload, request: web.Request) -> Upload | None:
    upload_id = request.match_info["id"]
    if not ID_PATTERN.fullmatch(upload_id):
        return None
    upload = await module.host.storage.uploads.get(upload_id)
    if upload is None or upload.filename != request.match_info["filename"]:
        return None  # the id is good for its own name only
    return upload


async def put(request: web.Request) -> web.Response:
    module = _module(request)
    upload = await _slot(module, request)
    signature = request.query.get("s", "")
    try:
        expires = parse_int(request.query.get("e", ""), 0, 10**12)
    except ValueError:
        raise web.HTTPForbidden(text="not a valid upload URL\n") from None
    if upload is None or not hmac.compare_digest(module.signature(upload, expires), signature):
        raise web.HTTPForbidden(text="not a valid upload URL\n")
    if time.time() > expires:
        raise web.HTTPGone(text="this upload URL has expired\n")
    if upload.stored_at is not None:
        raise web.HTTPConflict(text="this upload URL was used already\n")
    length = request.content_length
    if length is None:
        raise web.HTTPLengthRequired()
    if length > upload.size:
        raise web.HTTPRequestEntityTooLarge(upload.size, length)
    if length != upload.size:
        raise web.HTTPBadRequest(text=f"the slot is for exactly {upload.size} bytes\n")
    if upload.content_type and request.content_type.lower() != upload.content_type:
        raise web.HTTPBadRequest(text=f"the slot is for Content-Type {upload.content_type}\n")
    tmp = module.tmp / f"{upload.id}.{secrets.token_hex(4)}"
    try:
        received = await _receive(request, tmp, upload.size)
        if received != upload.size:
            raise web.HTTPBadRequest(text="the body is shorter than Content-Length\n")
        final = module.file(upload.id)
        try:
            await asyncio.to_thread(os.link, tmp, final)  # fails if a PUT got there first
        except FileExistsError:
            raise web.HTTPConflict(text="this upload URL was used already\n") from None
    finally:
        await asyncio.to_thread(tmp.unlink, missing_ok=True)
    if not await module.host.storage.uploads.mark_stored(upload.id, datetime.now(UTC)):
        await asyncio.to_thread(final.unlink, missing_ok=True)
        raise web.HTTPGone(text="this upload URL has expired\n")
    return web.Response(status=201, text="created\n")


async def _receive(request: web.Request, path: Path, size: int) -> int:
    """Stream the body to ``path``; 413 as soon as it exceeds ``size``."""
    received = 0
    fh = await asyncio.to_thread(path.open, "xb")
    try:
        async for chunk in request.content.iter_chunked(_CHUNK):
            received += len(chunk)
            if received > size:
                raise web.HTTPRequestEntityTooLarge(size, received)
            await asyncio.to_thread(fh.write, chunk)
    finally:
        await asyncio.to_thread(fh.close)
    return received


async def get(request: web.Request) -> web.StreamResponse:
    module = _module(request)
    upload = await _slot(module, request)
    if upload is None or upload.stored_at is None:
        raise web.HTTPNotFound()
    kept_until = module.kept_until(upload)
    if kept_until is not None and time.time() > kept_until:
        raise web.HTTPNotFound()  # expired: the cleanup has not got to it yet
    path = module.file(upload.id)
    if not await asyncio.to_thread(path.is_file):
        raise web.HTTPNotFound()
    content_type = upload.content_type or "application/octet-stream"
    disposition = "inline" if is_inline(content_type) else "attachment"
    name = quote(upload.filename, safe="")
    return web.FileResponse(path, headers={
        "Content-Type": content_type,
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{name}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": _FILE_CSP,
        "Cross-Origin-Resource-Policy": "cross-origin",  # other domains' clients show images
        "Cache-Control": "public, max-age=86400",
    })


def add_routes(app: web.Application) -> None:
    app.router.add_put("/upload/{id}/{filename}", put)
    app.router.add_get("/upload/{id}/{filename}", get)
