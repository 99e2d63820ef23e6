"""Named events with prioritised handlers: the one way features plug into the core.

A handler gets the event's argument and may be a plain function or a coroutine function. The
first handler (highest priority first) that returns ``True`` stops the chain and makes ``fire``
return ``True``: the event was handled. ``notify`` is for events every handler must hear (a
session ended): each runs to the end whatever the others return or raise; a failure is logged.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[Any], "bool | Awaitable[bool | None] | None"]


class Events:
    __slots__ = ("_handlers",)

    def __init__(self) -> None:
        self._handlers: dict[str, list[tuple[int, Handler]]] = {}

    def on(self, name: str, handler: Handler, priority: int = 0) -> None:
        chain = self._handlers.setdefault(name, [])
        chain.append((priority, handler))
        chain.sort(key=lambda item: -item[0])

    def off(self, name: str, handler: Handler) -> None:
        chain = self._handlers.get(name)
        if chain is None:
            return
        chain[:] = [item for item in chain if item[1] is not handler]
        if not chain:
            del self._handlers[name]

    def has(self, name: str) -> bool:
        return name in self._handlers

    async def fire(self, name: str, arg: Any = None) -> bool:
        chain = self._handlers.get(name)
        if not chain:
            return False
        for _, handler in tuple(chain):
            result = handler(arg)
            if inspect.isawaitable(result):
                result = await result
            if result is True:
                return True
        return False

    async def notify(self, name: str, arg: Any = None) -> None:
        """Run every handler of ``name``; one that fails is logged and the rest still run."""
        chain = self._handlers.get(name)
        if not chain:
            return
        for _, handler in tuple(chain):
            try:
                result = handler(arg)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("%s handler %s failed", name,
                              getattr(handler, "__qualname__", handler))
