"""Sliding-window event counters (failed logins, refused exchanges, registrations per IP)."""

from __future__ import annotations

import time
from collections import OrderedDict, deque


class Throttle:
    """``blocked(key)`` once ``limit`` events happened within the last ``window`` seconds.

    An event can be added before the outcome it stands for is known and withdrawn later
    (``add`` returns its stamp for ``withdraw``): check-and-add happens at once, so concurrent
    attempts cannot all pass the check before the first one is counted. At most ``max_keys``
    keys are tracked; the least recently used ones are forgotten first.
    """

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def count(self, key: str) -> int:
        events = self._events.get(key)
        if events is None:
            return 0
        horizon = time.monotonic() - self.window
        while events and events[0] < horizon:
            events.popleft()
        if not events:
            del self._events[key]
            return 0
        return len(events)

    def blocked(self, key: str) -> bool:
        return self.limit > 0 and self.count(key) >= self.limit

    def add(self, key: str) -> float:
        """Count an event now; returns its stamp (for ``withdraw``)."""
        now = time.monotonic()
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque(maxlen=max(self.limit, 1) * 2)
            if len(self._events) > self.max_keys:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(key)
        events.append(now)
        return now

    def withdraw(self, key: str, stamp: float) -> None:
        """Take back the event ``add`` stamped (if it is still counted)."""
        events = self._events.get(key)
        if events is not None and stamp in events:
            events.remove(stamp)
            if not events:
                del self._events[key]

    def failure(self, key: str) -> None:
        self.add(key)
