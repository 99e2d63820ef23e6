"""XEP-0185 dialback keys, and the blocklist's notion of a domain."""

from __future__ import annotations

from xmpp_server.config import S2SConfig
from xmpp_server.federation.dialback import check_key, hashed_secret, make_key
from xmpp_server.federation.limits import Limits


def test_key_matches_the_xep_0185_example():
    # XEP-0185 §2 (Receiving Server, Originating Server, Stream ID)
    hashed = hashed_secret("s3cr3tf0rd14lb4ck")
    key = make_key(hashed, "xmpp.example.com", "example.org", "D60000229F")
    assert key == "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"
    assert check_key(hashed, "xmpp.example.com", "example.org", "D60000229F", key)
    assert not check_key(hashed, "example.org", "xmpp.example.com", "D60000229F", key)
    assert not check_key(hashed, "xmpp.example.com", "example.org", "D60000229G", key)


def test_blocklist_covers_subdomains():
    limits = Limits(S2SConfig(blocklist=["evil.example"]))
    assert limits.blocked("evil.example") and limits.blocked("chat.evil.example")
    assert not limits.blocked("notevil.example") and not limits.blocked("example")
