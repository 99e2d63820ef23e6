"""Listening sockets that cannot be opened: one line saying which, where, why and what to set.

Every listener (c2s, direct TLS, s2s, components, HTTP) turns the ``OSError`` of binding into
a ``ListenError`` through ``cannot_listen``; the command line prints it as it is and exits
with status 2, after the server has stopped what it had started.

    cannot listen on 127.0.0.1:5269 (s2s): address already in use; change s2s.port or stop
    the program using it
"""

from __future__ import annotations

import errno
import os
import socket

__all__ = ["ListenError", "cannot_listen"]


class ListenError(Exception):
    """A listener could not bind its address. ``str()`` is one line naming the setting."""


def cannot_listen(what: str, bind: str, port: int, port_key: str, exc: OSError) -> ListenError:
    """The error of listener ``what`` (``"s2s"``) on ``bind``:``port``, whose port is the
    configuration key ``port_key`` (``"s2s.port"``; its section's ``bind`` is the address)."""
    bind_key = f"{port_key.partition('.')[0]}.bind"
    if isinstance(exc, socket.gaierror) or exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        hint = f"change {bind_key}"
    elif exc.errno == errno.EADDRINUSE:
        hint = f"change {port_key} or stop the program using it"
    elif exc.errno == errno.EACCES:
        hint = f"use a port above 1023 in {port_key}, or let the program bind low ports"
    else:
        hint = f"check {bind_key} and {port_key}"
    return ListenError(f"cannot listen on {_address(bind, port)} ({what}): {_reason(exc)}; {hint}")


def _address(bind: str, port: int) -> str:
    host = bind or "*"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(exc: OSError) -> str:
    """The system's words for the error, without asyncio's "error while attempting to bind"."""
    if isinstance(exc, socket.gaierror) or not exc.errno or exc.errno < 0:
        text = str(exc.strerror or exc)
    else:
        text = os.strerror(exc.errno)
    return text[:1].lower() + text[1:]
