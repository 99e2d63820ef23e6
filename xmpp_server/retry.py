"""Bounded retries of storage calls that must not be dropped for one hiccup of the database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


async def retried(call: Callable[[], Awaitable[T]], what: str, attempts: int = 5,
                  delay: float = 0.1,
                  retry_if: Callable[[Exception], bool] | None = None) -> T:
    """``await call()``, again after a failure (delay doubling) up to ``attempts`` times;
    each failure is logged, and the last one (or one ``retry_if`` refuses) raised."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except Exception as exc:
            if retry_if is not None and not retry_if(exc):
                raise
            if attempt == attempts:
                log.error("%s failed %d times; giving up", what, attempts)
                raise
            log.warning("%s failed (%s); retrying", what, exc)
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")
