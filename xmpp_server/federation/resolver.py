"""RFC 6120 §3.2 and XEP-0368: where a remote domain's server listens.

``targets(domain)``: the static ``s2s.hosts`` entry if there is one; else the SRV records of
``_xmpps-server._tcp`` (direct TLS, XEP-0368) and ``_xmpp-server._tcp`` (STARTTLS) together,
by priority, then weight (RFC 2782, weighted random), direct TLS first at equal priority; a
single "." target means the domain offers no service (RFC 6120 §3.2.1 and RFC 2782); no
records at all fall back to the domain itself on 5269 (§3.2.2). ``addresses(host)``: its IPv6
then IPv4 addresses (AAAA and A asked together), or what the system resolver knows
(/etc/hosts) when DNS has none. Queries go to ``s2s.nameservers``, or the system's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

log = logging.getLogger(__name__)

DEFAULT_PORT = 5269


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    direct_tls: bool = False


class NotFound(Exception):
    """The domain has no server-to-server service."""


class Resolver:
    def __init__(self, static: dict[str, str], nameservers: list[str],
                 timeout: float = 5.0) -> None:
        self.static = static  # the config's dict: edits to it are seen
        dns_resolver = dns.asyncresolver.Resolver(configure=not nameservers)
        if nameservers:
            hosts, ports = [], {}
            for server in nameservers:
                host, _, port = server.rpartition(":")
                host = host.strip("[]")
                hosts.append(host)
                ports[host] = int(port)
            dns_resolver.nameservers = hosts
            dns_resolver.nameserver_ports = ports
        dns_resolver.lifetime = timeout
        self._dns = dns_resolver

    async def targets(self, domain: str) -> list[Target]:
        static = self.static.get(domain)
        if static is not None:
            host, _, port = static.rpartition(":")
            return [Target(host.strip("[]"), int(port))]
        direct, starttls = await asyncio.gather(
            self._srv(f"_xmpps-server._tcp.{domain}."), self._srv(f"_xmpp-server._tcp.{domain}."))
        if direct is None and starttls is None:
            return [Target(domain, DEFAULT_PORT)]  # RFC 6120 §3.2.2
        records = [(prio, weight, Target(host, port, True)) for prio, weight, host, port
                   in direct or ()]
        records += [(prio, weight, Target(host, port)) for prio, weight, host, port
                    in starttls or ()]
        records = [r for r in records if r[2].host != "."]
        if not records:
            raise NotFound(f"{domain} offers no server-to-server service")
        return _order(records)

    async def addresses(self, host: str) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        v6, v4 = await asyncio.gather(self._query(host, "AAAA"), self._query(host, "A"))
        found = v6 + v4
        if found:
            return found
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, None, type=socket.SOCK_STREAM)
        except OSError:
            return []
        out: list[str] = []
        for family, *_, sockaddr in sorted(infos, key=lambda i: i[0] != socket.AF_INET6):
            address = str(sockaddr[0])
            if family in (socket.AF_INET, socket.AF_INET6) and address not in out:
                out.append(address)
        return out

    async def _srv(self, name: str) -> list[tuple[int, int, str, int]] | None:
        """The SRV records of ``name``; None when there are none (or DNS failed)."""
        try:
            answer = await self._dns.resolve(name, "SRV", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers,
                dns.exception.Timeout, dns.name.EmptyLabel, dns.name.LabelTooLong):
            return None
        except dns.exception.DNSException as exc:
            log.info("SRV lookup of %s failed: %s", name, exc)
            return None
        return [(r.priority, r.weight,
                 "." if r.target == dns.name.root else r.target.to_text(omit_final_dot=True),
                 r.port) for r in answer]

    async def _query(self, host: str, rdtype: str) -> list[str]:
        try:
            answer = await self._dns.resolve(host.rstrip(".") + ".", rdtype, search=False)
        except dns.exception.DNSException:
            return []
        return [r.to_text() for r in answer]


def _order(records: list[tuple[int, int, Target]]) -> list[Target]:
    """RFC 2782: ascending priority; within one, a weighted random order (XEP-0368: direct
    TLS records first at equal priority, as they save a round trip)."""
    out: list[Target] = []
    for prio in sorted({r[0] for r in records}):
        for direct in (True, False):
            group = [(w, t) for p, w, t in records if p == prio and t.direct_tls == direct]
            while group:
                total = sum(w for w, _ in group)
                pick = random.uniform(0, total) if total else 0
                index = 0
                for index, (weight, _) in enumerate(group):  # noqa: B007
                    pick -= weight
                    if pick <= 0:
                        break
                out.append(group.pop(index)[1])
    return out
