"""The local admin endpoint: HTTP on a Unix socket, where ``xmppd`` commands ask the running
server what only it knows (the rooms in its memory, with their occupants).

==========  =======================================================================
GET /rooms  ``{"domain": ..., "rooms": [RoomSummary, ...]}``: every room, stored or live
==========  =======================================================================

The socket is ``server.admin_socket`` (empty: ``<data_dir>/admin.sock``), so a command run
with the server's configuration finds it. Only the server's own user (and root) get in: the
socket is made with mode 0600 under a temporary name and then moved into place, and each
connection's peer is checked (SO_PEERCRED) as well. A server that cannot make the socket (a
path too long for a Unix socket, a read-only directory), or finds another server answering
on it, logs why and runs without it; commands then read the database (``ask`` raises
``Unreachable``, saying why).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from xmpp_server.modules.muc import listing

if TYPE_CHECKING:
    from xmpp_server.config import Config
    from xmpp_server.host import Host

log = logging.getLogger(__name__)

HOST_KEY: web.AppKey[Host] = web.AppKey("admin_host")
_PEERCRED = getattr(socket, "SO_PEERCRED", None)  # Linux; elsewhere the file mode alone
_CRED = struct.Struct("3i")  # pid, uid, gid


def path_of(config: Config) -> Path:
    configured = config.server.admin_socket
    if configured:
        return Path(os.path.abspath(Path(configured).expanduser()))
    return config.server.data_dir / "admin.sock"


class Unreachable(Exception):
    """No running server answered on the admin socket (the message says why)."""


# -- the server's side -------------------------------------------------------------------------

class AdminSocket:
    def __init__(self, host: Host, path: Path) -> None:
        self.host = host
        self.path = path
        self._runner: web.AppRunner | None = None
        self._inode: int | None = None

    async def start(self) -> None:
        path = self.path
        if await _answers(path):
            log.warning("admin socket %s: another server answers there; running without one",
                        path)
            return
        try:
            sock = _bind(path)
        except OSError as exc:
            log.warning("admin socket %s: %s; xmppd commands will read the database only",
                        path, exc.strerror or exc)
            return
        app = web.Application(middlewares=[_own_user_only])
        app[HOST_KEY] = self.host
        app.router.add_get("/rooms", _rooms)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner
        self._inode = os.stat(path).st_ino
        log.info("admin socket at %s", path)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        with contextlib.suppress(OSError):
            if self._inode is not None and os.stat(self.path).st_ino == self._inode:
                self.path.unlink()  # ours, not a newer server's
        self._inode = None


def _bind(path: Path) -> socket.socket:
    """A listening socket at ``path`` that nobody but this user could connect to, ever."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by an earlier process of this id
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(tmp))
        try:
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)  # a stale socket of a server that died goes
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        sock.listen(16)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def _answers(path: Path) -> bool:
    try:
        async with asyncio.timeout(2):
            _, writer = await asyncio.open_unix_connection(str(path))
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


@web.middleware
async def _own_user_only(request: web.Request, handler: Any) -> web.StreamResponse:
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if _PEERCRED is not None and sock is not None:
        _, uid, _ = _CRED.unpack(sock.getsockopt(socket.SOL_SOCKET, _PEERCRED, _CRED.size))
        if uid not in (os.getuid(), 0):
            raise web.HTTPForbidden(text="only the server's own user\n")
    response: web.StreamResponse = await handler(request)
    return response


async def _rooms(request: web.Request) -> web.Response:
    from xmpp_server.modules.muc import Muc

    host = request.app[HOST_KEY]
    muc = host.modules.get(Muc.name)
    if isinstance(muc, Muc):
        rooms = await listing.summaries(muc.service)
    else:  # no group chat service running: nobody is in any room
        rooms = await listing.stored_summaries(host.storage.rooms, host.config.muc.domain, 0)
    return web.json_response({"domain": host.domain, "rooms": [r.to_json() for r in rooms]})


# -- the command line's side -------------------------------------------------------------------

async def ask(path: Path, what: str, timeout: float = 10.0) -> Any:
    """GET ``what`` (``/rooms``) from the server answering on ``path``: the decoded JSON."""
    try:
        async with aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(path)),
                timeout=aiohttp.ClientTimeout(total=timeout)) as http, \
                http.get(f"http://xmppd{what}") as response:
            if response.status != 200:
                raise Unreachable(f"the server at {path} answered {response.status}")
            return await response.json()
    except aiohttp.ClientConnectorError as exc:
        raise Unreachable(_why(path, exc.os_error)) from None
    except (aiohttp.ClientError, ValueError) as exc:
        raise Unreachable(f"the server at {path} did not answer as expected ({exc})") from None
    except TimeoutError:
        raise Unreachable(f"the server at {path} did not answer in {timeout:g} s") from None


def _why(path: Path, error: OSError) -> str:
    if isinstance(error, FileNotFoundError | ConnectionRefusedError):
        return f"no server is running (nothing answers on {path})"
    if isinstance(error, PermissionError):
        return f"{path}: permission denied (run this as the server's user)"
    return f"{path}: {error.strerror or error}"
