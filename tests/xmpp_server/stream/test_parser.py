"""The incremental parser's stanza size limit (RFC 6120 §13.12: a limit per stanza)."""

from __future__ import annotations

import pytest

from xmpp_server.errors import StreamError
from xmpp_server.stream.parser import Limits, StreamHeader, StreamParser

HEADER = (b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
          b" to='localhost' version='1.0'>")
LIMIT = 262144


def _message(i: int) -> bytes:
    return f"<message to='b@localhost' id='m{i}'><body>hello {i}</body></message>".encode()


def test_one_read_of_many_small_stanzas_is_not_one_stanza():
    parser = StreamParser(Limits(max_stanza_bytes=LIMIT))
    assert isinstance(parser.feed(HEADER)[0], StreamHeader)
    data = b"".join(_message(i) for i in range(5000))
    assert len(data) > LIMIT
    items = parser.feed(data)
    assert [el.get("id") for el in items] == [f"m{i}" for i in range(5000)]


@pytest.mark.parametrize("framed", [False, True])
def test_oversized_stanza_in_small_reads_is_refused(framed: bool):
    parser = StreamParser(Limits(max_stanza_bytes=LIMIT), framed=framed)
    if not framed:
        parser.feed(HEADER)
    parser.feed(b"<message to='b@localhost'><body>")
    with pytest.raises(StreamError) as err:
        for _ in range(LIMIT // 1000 + 1):
            parser.feed(b"A" * 1000)
    assert err.value.condition == "policy-violation"


def test_oversized_stanza_after_small_ones_in_one_read_is_refused():
    parser = StreamParser(Limits(max_stanza_bytes=LIMIT))
    parser.feed(HEADER)
    with pytest.raises(StreamError) as err:
        parser.feed(_message(1) * 10 + b"<message><body>" + b"A" * (LIMIT + 10))
    assert err.value.condition == "policy-violation"


def test_stanza_just_under_the_limit_after_others_is_accepted():
    parser = StreamParser(Limits(max_stanza_bytes=LIMIT))
    parser.feed(HEADER)
    big = b"<message><body>" + b"A" * (LIMIT - 10_000) + b"</body></message>"
    data = _message(1) * 100 + big + _message(2)
    items = []
    for i in range(0, len(data), 65536):  # the way a socket delivers it
        items += parser.feed(data[i : i + 65536])
    assert len(items) == 102
