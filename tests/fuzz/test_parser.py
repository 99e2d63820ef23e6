"""Properties of the incremental stream parser (xmpp_server/stream/parser.py).

Whatever bytes arrive, however they are cut into reads, the parser yields events or raises
StreamError, nothing else; a valid stream gives the same stanzas at every split; the depth,
attribute and size limits hold at every split.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from lxml import etree

from tests.fuzz.strategies import FOOTER, HEADER, chunkings, shape, split, stanzas, whitespace
from xmpp_server.errors import StreamError
from xmpp_server.stream.parser import _PIECE, Limits, StreamHeader, StreamParser


def feed_all(parser: StreamParser, chunks: list[bytes]) -> list[object]:
    out: list[object] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out


def stream_of(els: list[etree._Element], gaps: list[str], close: bool) -> bytes:
    body = b"".join(gap.encode() + etree.tostring(el) for el, gap in zip(els, gaps, strict=False))
    return HEADER + body + (FOOTER if close else b"")


@given(st.binary(max_size=600), st.data())
def test_arbitrary_bytes_raise_only_stream_errors(data: bytes, draw: st.DataObject) -> None:
    for framed in (False, True):
        parser = StreamParser(Limits(max_stanza_bytes=400, max_depth=8, max_attributes=6),
                              framed=framed)
        try:
            feed_all(parser, draw.draw(chunkings(data)))
        except StreamError:
            pass


@given(st.lists(stanzas(), max_size=4), st.binary(min_size=1, max_size=40),
       st.integers(min_value=0), st.data())
def test_corrupted_stream_raises_only_stream_errors(els: list[etree._Element], junk: bytes,
                                                   where: int, draw: st.DataObject) -> None:
    """A valid stream with bytes spliced in anywhere: events or StreamError, never a crash."""
    valid = stream_of(els, [""] * len(els), close=True)
    at = where % (len(valid) + 1)
    data = valid[:at] + junk + valid[at:]
    try:
        feed_all(StreamParser(Limits()), draw.draw(chunkings(data)))
    except StreamError:
        pass


@given(st.lists(stanzas(), max_size=5), st.lists(whitespace, min_size=5, max_size=5),
       st.booleans(), st.data())
def test_any_split_yields_the_same_stanzas(els: list[etree._Element], gaps: list[str],
                                           close: bool, draw: st.DataObject) -> None:
    data = stream_of(els, gaps, close)
    events = feed_all(StreamParser(Limits()), draw.draw(chunkings(data)))
    assert isinstance(events[0], StreamHeader)
    assert events[0].attrib["to"] == "localhost"
    got = events[1:]
    if close:
        assert got[-1] is None
        got = got[:-1]
    assert [shape(e) for e in got] == [shape(e) for e in els]  # type: ignore[arg-type]


@pytest.mark.parametrize("cut", [
    [b"<message to='a'", b" ", b"type='chat'/>"],  # the space between two attributes
    [b"<message><body>a", b"  ", b"b</body></message>"],  # spaces inside text
    [b"<message><body>a", b"\n", b"b</body></message>"],
])
def test_whitespace_only_read_inside_a_stanza_is_kept(cut: list[bytes]) -> None:
    """A read holding only whitespace is a keepalive only between stanzas; inside one it
    is part of the stanza (TCP may cut anywhere)."""
    parser = StreamParser(Limits())
    parser.feed(HEADER)
    [stanza] = feed_all(parser, cut)
    whole = etree.fromstring(b"<s xmlns='jabber:client'>" + b"".join(cut) + b"</s>")[0]
    assert shape(stanza) == shape(whole)  # type: ignore[arg-type]


def nested(depth: int, attributes: int = 0) -> bytes:
    attrs = "".join(f" a{i}='{i}'" for i in range(attributes))
    return (f"<message{attrs}>" + "<x>" * (depth - 1) + "</x>" * (depth - 1)
            + "</message>").encode()


@given(st.integers(min_value=1, max_value=14), st.integers(min_value=2, max_value=12),
       st.data())
def test_depth_limit_at_any_split(depth: int, max_depth: int, draw: st.DataObject) -> None:
    """A stanza nested ``depth`` deep sits at document depth ``depth + 1``."""
    parser = StreamParser(Limits(max_depth=max_depth))
    data = HEADER + nested(depth) + b"<presence/>"
    try:
        events = feed_all(parser, draw.draw(chunkings(data)))
    except StreamError as exc:
        assert depth + 1 > max_depth and exc.condition == "policy-violation"
    else:
        assert depth + 1 <= max_depth and len(events) == 3


@given(st.integers(min_value=0, max_value=12), st.integers(min_value=1, max_value=8),
       st.data())
def test_attribute_limit_at_any_split(count: int, limit: int, draw: st.DataObject) -> None:
    parser = StreamParser(Limits(max_attributes=limit + 4))  # the header has 4 attributes
    data = HEADER + nested(2, attributes=count + 4)
    try:
        events = feed_all(parser, draw.draw(chunkings(data)))
    except StreamError as exc:
        assert count > limit and exc.condition == "policy-violation"
    else:
        assert count <= limit and len(events) == 2


def sized(n: int) -> bytes:
    """A stanza of exactly ``n`` bytes (n >= 32)."""
    return b"<message><body>" + b"x" * (n - 32) + b"</body></message>"


# The parser knows how many bytes the element being parsed has taken to within one piece of a
# read (parser._PIECE) plus what libxml2 holds back before it reports an element's end: the
# limit is exact up to that slack, whatever the reads.
SLACK = 2 * _PIECE
LIMIT = 4 * _PIECE


@given(st.integers(min_value=LIMIT + SLACK, max_value=LIMIT + 3 * SLACK), st.data())
@example(size=LIMIT + SLACK + 100, draw=None)
def test_oversized_stanza_refused_at_any_split(size: int, draw: st.DataObject | None) -> None:
    data = HEADER + sized(40) + sized(size)
    # the example: one read ends the small stanza and brings most of the big one
    chunks = (split(data, [len(HEADER) + 20, len(HEADER) + 40 + size - 10]) if draw is None
              else draw.draw(chunkings(data)))
    with pytest.raises(StreamError) as info:
        feed_all(StreamParser(Limits(max_stanza_bytes=LIMIT)), chunks)
    assert info.value.condition == "policy-violation"


@given(st.lists(st.integers(min_value=32, max_value=LIMIT - SLACK), min_size=1, max_size=6),
       st.data())
@example(sizes=[(LIMIT - SLACK) // 2 + 1] * 8, draw=None)
def test_stanzas_within_the_limit_accepted_at_any_split(sizes: list[int],
                                                        draw: st.DataObject | None) -> None:
    """However many fit in one read (the limit is per stanza, not per read)."""
    body = b"".join(sized(n) for n in sizes)
    chunks = [HEADER, body] if draw is None else draw.draw(chunkings(body))
    parser = StreamParser(Limits(max_stanza_bytes=LIMIT))
    if draw is not None:
        parser.feed(HEADER)
    events = feed_all(parser, chunks)
    assert len([e for e in events if isinstance(e, etree._Element)]) == len(sizes)
