"""Federation limits: a blocklist of domains and connection counts per remote domain.

- ``blocked(domain)``: the domain or one of its parent domains is in ``s2s.blocklist``; such
  a peer is refused on inbound streams and our stanzas to it bounce with policy-violation.
- ``admit(stream, domain)``: an inbound stream is about to be authenticated for a remote
  domain (dialback, SASL); at most ``s2s.max_connections_per_domain`` inbound streams may be
  authenticated for the same one. Only authenticated streams count, so that nobody can use
  up another domain's share by claiming its name; unauthenticated streams are bounded by
  ``s2s.max_connections`` and dropped after ``s2s.connect_timeout``. ``release(stream)``
  when the stream ends.
- Outgoing streams are one per domain pair, so their number is bounded by the domains we
  serve (``Federation.links``).
Stanza size is limited by the stream parser (``s2s.max_stanza_bytes``); a peer breaking
any rule gets a stream error and loses its connection, never affecting local sessions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xmpp_server.config import S2SConfig
    from xmpp_server.federation.stream import ServerStream


class Limits:
    def __init__(self, config: S2SConfig) -> None:
        self.config = config
        self.claims: dict[str, set[ServerStream]] = {}
        self._by_stream: dict[ServerStream, set[str]] = {}

    def blocked(self, domain: str) -> bool:
        blocklist = self.config.blocklist
        if not blocklist:
            return False
        labels = domain.split(".")
        return any(".".join(labels[i:]) in blocklist for i in range(len(labels)))

    def admit(self, stream: ServerStream, domain: str) -> bool:
        streams = self.claims.setdefault(domain, set())
        if stream in streams:
            return True
        if len(streams) >= self.config.max_connections_per_domain:
            if not streams:
                del self.claims[domain]
            return False
        streams.add(stream)
        self._by_stream.setdefault(stream, set()).add(domain)
        return True

    def release(self, stream: ServerStream) -> None:
        for domain in self._by_stream.pop(stream, ()):
            streams = self.claims.get(domain)
            if streams is not None:
                streams.discard(stream)
                if not streams:
                    del self.claims[domain]
