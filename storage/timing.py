"""Statement timing for metrics: SQLAlchemy cursor events, so no repository is touched."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

Observer = Callable[[str, float], None]  # (operation, seconds)
_KEY = "xmppd_statement_started"
_OPERATIONS = frozenset({"select", "insert", "update", "delete"})


def listen(engine: AsyncEngine, observe: Observer) -> Callable[[], None]:
    """Call ``observe(operation, seconds)`` after every statement; returns the undo.

    ``operation`` is select, insert, update, delete or other (a small, fixed label set).
    """
    sync = engine.sync_engine

    def before(conn: Any, _cursor: Any, _statement: str, *_: Any) -> None:
        conn.info.setdefault(_KEY, []).append(time.perf_counter())

    def after(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        started = conn.info.get(_KEY)
        if not started:
            return
        elapsed = time.perf_counter() - started.pop()
        word = statement.lstrip()[:6].lower()
        observe(word if word in _OPERATIONS else "other", elapsed)

    event.listen(sync, "before_cursor_execute", before)
    event.listen(sync, "after_cursor_execute", after)

    def undo() -> None:
        event.remove(sync, "before_cursor_execute", before)
        event.remove(sync, "after_cursor_execute", after)

    return undo
