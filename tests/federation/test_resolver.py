"""RFC 6120 §3.2 / XEP-0368 resolution, against a DNS server of the test's own."""

from __future__ import annotations

import pytest

from tests.federation.conftest import free_port
from tests.federation.helpers import body, chat, close, user
from xmpp_server.federation.resolver import NotFound, Resolver, Target


@pytest.fixture
def resolver(dns_server):
    return Resolver({"static.test": "127.0.0.9:5999"}, [f"127.0.0.1:{dns_server.port}"])


async def test_srv_records_by_priority_direct_tls_first(resolver, dns_server):
    dns_server.add("_xmpp-server._tcp.example.test", "SRV",
                   "20 0 5269 backup.example.test.", "10 0 5269 xmpp.example.test.")
    dns_server.add("_xmpps-server._tcp.example.test", "SRV", "10 0 5270 xmpp.example.test.")
    assert await resolver.targets("example.test") == [
        Target("xmpp.example.test", 5270, True), Target("xmpp.example.test", 5269),
        Target("backup.example.test", 5269)]


async def test_fallback_static_map_and_no_service(resolver, dns_server):
    # RFC 6120 §3.2.2: no SRV records: the domain itself on 5269
    assert await resolver.targets("plain.test") == [Target("plain.test", 5269)]
    # s2s.hosts wins over DNS
    dns_server.add("_xmpp-server._tcp.static.test", "SRV", "0 0 5269 elsewhere.test.")
    assert await resolver.targets("static.test") == [Target("127.0.0.9", 5999)]
    # "." : decidedly no service (RFC 2782)
    dns_server.add("_xmpp-server._tcp.none.test", "SRV", "0 0 0 .")
    with pytest.raises(NotFound):
        await resolver.targets("none.test")


async def test_addresses_ipv6_first_then_the_system_resolver(resolver, dns_server):
    dns_server.add("dual.test", "A", "127.0.0.5")
    dns_server.add("dual.test", "AAAA", "::1")
    assert await resolver.addresses("dual.test") == ["::1", "127.0.0.5"]
    assert await resolver.addresses("127.0.0.7") == ["127.0.0.7"]
    assert "127.0.0.1" in await resolver.addresses("localhost")  # /etc/hosts
    assert await resolver.addresses("nowhere.test") == []


async def test_direct_tls_peer_found_by_srv(federation, dns_server):
    direct = free_port("127.0.0.3")
    a, b = await federation.start(a={"s2s": {"hosts": ""}},
                                  b={"s2s": {"direct_tls_port": direct}})
    dns_server.add("_xmpps-server._tcp.b.test", "SRV", f"0 0 {direct} xmpp.b.test.")
    dns_server.add("xmpp.b.test", "A", "127.0.0.3")
    alice = await user(a, "alice")
    bob = await user(b, "bob")
    chat(alice, "bob@b.test", "over direct TLS")
    await bob.next("message", body("over direct TLS"))
    stream = a.federation.links[("a.test", "b.test")].stream
    assert stream.connection.secure and stream.auth_method == "dialback"
    assert stream.connection.ssl_object.selected_alpn_protocol() == "xmpp-server"
    assert ("_xmpps-server._tcp.b.test", "SRV") in dns_server.queries
    await close(alice, bob)
