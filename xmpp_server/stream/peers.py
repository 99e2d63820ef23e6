"""Client connections per address: one address may hold at most ``c2s.max_connections_per_ip``
streams over TCP, direct TLS, WebSocket and BOSH together, so one host cannot take them all."""

from __future__ import annotations


class ConnectionsPerAddress:
    """``admit(ip)`` counts a connection (False over the cap); ``release(ip)`` uncounts it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    def admit(self, ip: str) -> bool:
        count = self._counts.get(ip, 0)
        if count >= self.limit:
            return False
        self._counts[ip] = count + 1
        return True

    def release(self, ip: str) -> None:
        count = self._counts.get(ip, 0) - 1
        if count > 0:
            self._counts[ip] = count
        else:
            self._counts.pop(ip, None)

    def count(self, ip: str) -> int:
        return self._counts.get(ip, 0)
