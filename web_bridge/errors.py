"""Unexpected failures of HTTP handlers: a plain 500 for the client, the details in our log.

The client learns that something failed and a request id to quote; the traceback, which
may name files, queries or values, goes only to the log under that id. HTTP errors the
handlers raise on purpose (4xx, 503...) pass through untouched.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger(__name__)


@web.middleware
async def internal_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (web.HTTPException, asyncio.CancelledError, ConnectionError):
        raise  # answers on purpose; the client went away
    except Exception:
        request_id = secrets.token_hex(8)
        log.exception("HTTP %s %s failed (request id %s)", request.method, request.path,
                      request_id)
        if request.writer is not None and request.writer.output_size > 0:
            raise  # the response has begun (a WebSocket): aiohttp can only close it now
        return web.Response(status=500, text=f"internal server error (request id {request_id})\n",
                            headers={"Cache-Control": "no-store"})


def install(app: web.Application) -> None:
    """Outermost, so that it sees what the other middlewares raise too."""
    app.middlewares.insert(0, internal_errors)
