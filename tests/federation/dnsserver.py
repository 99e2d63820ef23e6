"""A tiny authoritative DNS server on loopback (UDP), answering from a dict.

``records`` maps (name, type) to rdata texts, e.g. ("_xmpp-server._tcp.b.test", "SRV"):
["0 5 5269 b.test."]. A known name without the type asked gets an empty answer; an unknown
name NXDOMAIN. Both our resolver (``s2s.nameservers``) and Prosody's (libunbound ``forward``)
use it in tests, so SRV records can point anywhere on loopback.
"""

from __future__ import annotations

import asyncio
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DNSServer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.queries: list[tuple[str, str]] = []

    def add(self, name: str, rdtype: str, *rdata: str) -> None:
        key = (name.lower().rstrip("."), rdtype.upper())
        self.records.setdefault(key, []).extend(rdata)

    async def start(self, address: str = "127.0.0.1") -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(address, 0))
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA | dns.flags.RA
        for question in query.question:
            name = question.name.to_text(omit_final_dot=True).lower()
            rdtype = dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, rdtype))
            rdata = self.records.get((name, rdtype))
            if rdata:
                response.answer.append(dns.rrset.from_text_list(
                    question.name, 60, dns.rdataclass.IN, question.rdtype, rdata))
            elif not any(key[0] == name for key in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)
