"""Properties of JIDs (xmpp_server/jid.py, RFC 7622): any string parses or raises JIDError;
preparation is idempotent; the string form parses back to the same JID; the ASCII fast paths
agree with the PRECIS/IDNA reference paths."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from xmpp_server import jid as jid_mod
from xmpp_server.errors import JIDError
from xmpp_server.jid import JID, prep_domainpart, prep_localpart, prep_resourcepart

_SPECIAL = st.sampled_from("@/.[]:-_%\\ \u3002\uff0e\uff20\u00df\u03a3AZaz09")
any_chars = st.one_of(_SPECIAL, st.characters(codec="utf-8"))
parts = st.text(any_chars, max_size=20)
ascii_parts = st.text(st.characters(codec="ascii"), max_size=20)
labels = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True)
domains = st.one_of(
    st.lists(labels, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
    parts,
)
jid_strings = st.one_of(
    st.text(any_chars, max_size=40),
    st.tuples(st.one_of(st.none(), parts), domains, st.one_of(st.none(), parts)).map(
        lambda t: (f"{t[0]}@" if t[0] is not None else "") + t[1]
        + (f"/{t[2]}" if t[2] is not None else "")),
)


def prepared(fn: Callable[[str], str], s: str) -> str | None:
    try:
        return fn(s)
    except JIDError:
        return None


@given(jid_strings)
@example("a@b/c@d/e")
@example("[::ffff:1.2.3.4]")
@example("xn--ls8h.example")
@example("juliet@example.com.")
def test_parse_round_trip(s: str) -> None:
    try:
        j = JID.parse(s)
    except JIDError:
        return
    again = JID.parse(str(j))
    assert again == j and str(again) == str(j)
    assert JID.parse(j.bare_str) == j.bare
    assert (j.local, j.domain, j.resource) == (again.local, again.domain, again.resource)


@given(st.one_of(st.none(), parts), domains, st.one_of(st.none(), parts))
def test_make_then_parse(local: str | None, domain: str, resource: str | None) -> None:
    try:
        j = JID.make(local, domain, resource)
    except JIDError:
        return
    assert JID.parse(str(j)) == j


@pytest.mark.parametrize("prep", [prep_localpart, prep_domainpart, prep_resourcepart])
@given(s=parts)
def test_preparation_is_idempotent(prep: Callable[[str], str], s: str) -> None:
    once = prepared(prep, s)
    if once is not None:
        assert prep(once) == once


@pytest.mark.parametrize(("fast", "reference"), [
    (prep_localpart, jid_mod._prep_localpart_precis),
    (prep_resourcepart, jid_mod._prep_resourcepart_precis),
    (prep_domainpart, lambda s: jid_mod._prep_domainpart_idna(s.removesuffix("."))),
])
@given(s=ascii_parts)
def test_ascii_fast_paths_agree_with_reference(fast: Callable[[str], str],
                                               reference: Callable[[str], str], s: str) -> None:
    assert prepared(fast, s) == prepared(reference, s)


@given(st.text(any_chars, max_size=5000))
def test_long_input_only_jid_errors(s: str) -> None:
    try:
        JID.parse(s * 3)
    except JIDError:
        pass
