"""File descriptors: every connection holds one.

At start the soft RLIMIT_NOFILE is raised to the hard limit (the value is logged). When they
run out anyway, asyncio's accept loop reports every failed ``accept()`` (EMFILE, ENFILE) to
the loop's exception handler, up to the listen backlog of them per retry, each with a
traceback; ``AcceptErrors`` logs them once per interval with a count instead. (uvloop, via
libuv, refuses such connections itself and reports nothing.)
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import time
from typing import Any

log = logging.getLogger(__name__)

_OUT_OF_RESOURCES = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))


def raise_nofile_limit() -> int:
    """Raise the soft limit on open files to the hard one; returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open file limit from %d to %d: %s", soft, hard, exc)
    log.info("open file limit (RLIMIT_NOFILE): %d connections at most", soft)
    return soft


class AcceptErrors:
    """The loop's exception handler while the server runs: failed accepts are counted and
    logged once per ``interval`` seconds; everything else goes to the previous handler."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self.count = 0  # failed accepts not reported yet
        self._reported = -interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._previous = loop.get_exception_handler()
        loop.set_exception_handler(self)

    def uninstall(self) -> None:
        if self._loop is not None and self._loop.get_exception_handler() is self:
            self._loop.set_exception_handler(self._previous)
        self._loop = None

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if (isinstance(exc, OSError) and exc.errno in _OUT_OF_RESOURCES
                and "accept" in str(context.get("message", ""))):
            self.count += 1
            now = time.monotonic()
            if now - self._reported >= self.interval:
                soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
                log.error("cannot accept connections: %s (%d times since the last report; "
                          "open file limit %d)", exc.strerror, self.count, soft)
                self.count = 0
                self._reported = now
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)
