"""Stanzas per second from one client (``limits.stanzas_per_second``): a token bucket.

Over the rate the session stops reading from its connection until the bucket has refilled
(as Prosody's mod_limits does with bytes): the client is slowed, nothing is dropped, and the
other sessions never wait for it.
"""

from __future__ import annotations

import time


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; ``take()`` spends one."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = time.monotonic()

    def take(self) -> float:
        """Spend a token; returns the seconds to wait before acting on it (0: now)."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate) - 1
        self._stamp = now
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
