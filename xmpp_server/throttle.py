"""Sliding-window failure counters (failed logins per IP and per account, registrations per IP)."""

from __future__ import annotations

import time
from collections import OrderedDict, deque


class Throttle:
    """``blocked(key)`` once ``limit`` events happened within ``window`` seconds.

    A blocked key stays blocked for ``lockout`` seconds after its last event. At most
    ``max_keys`` keys are tracked; the least recently used ones are forgotten first.
    """

    def __init__(self, limit: int, window: float, lockout: float = 0.0,
                 max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.lockout = lockout
        self.max_keys = max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        horizon = now - max(self.window, self.lockout)
        while events and events[0] < horizon:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events

    def blocked(self, key: str) -> bool:
        if self.limit <= 0:
            return False
        now = time.monotonic()
        events = self._recent(key, now)
        if events is None:
            return False
        in_window = sum(1 for t in events if t >= now - self.window)
        if in_window >= self.limit:
            return True
        return len(events) >= self.limit and events[-1] >= now - self.lockout

    def failure(self, key: str) -> None:
        now = time.monotonic()
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque(maxlen=max(self.limit, 1) * 2)
            if len(self._events) > self.max_keys:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(key)
        events.append(now)

    def success(self, key: str) -> None:
        self._events.pop(key, None)


class Throttles:
    """Several throttles addressed by a ``kind:`` prefix of the key ("ip:1.2.3.4", "user:bob")."""

    def __init__(self, **by_kind: Throttle) -> None:
        self._by_kind = by_kind

    def _get(self, key: str) -> Throttle:
        return self._by_kind[key.split(":", 1)[0]]

    def blocked(self, key: str) -> bool:
        return self._get(key).blocked(key)

    def failure(self, key: str) -> None:
        self._get(key).failure(key)

    def success(self, key: str) -> None:
        self._get(key).success(key)
