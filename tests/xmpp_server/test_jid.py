"""Tests for xmpp_server.jid (RFC 7622 addresses)."""

from __future__ import annotations

import copy
import pickle
import random
from collections.abc import Callable

import pytest

from xmpp_server import jid as jid_mod
from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.jid import JID, prep_domainpart, prep_localpart, prep_resourcepart

# --- RFC 7622 §3.5 ---------------------------------------------------------------------------

# Table 1 (valid JIDs), with the expected (local, domain, resource) after preparation.
RFC_VALID = [
    ("juliet@example.com", ("juliet", "example.com", None)),
    ("juliet@example.com/foo", ("juliet", "example.com", "foo")),
    ("juliet@example.com/foo bar", ("juliet", "example.com", "foo bar")),
    ("juliet@example.com/foo@bar", ("juliet", "example.com", "foo@bar")),
    ("foo\\20bar@example.com", ("foo\\20bar", "example.com", None)),
    ("fussball@example.com", ("fussball", "example.com", None)),
    ("fu\u00dfball@example.com", ("fu\u00dfball", "example.com", None)),
    ("\u03c0@example.com", ("\u03c0", "example.com", None)),
    ("\u03a3@example.com/foo", ("\u03c3", "example.com", "foo")),
    ("\u03c3@example.com/foo", ("\u03c3", "example.com", "foo")),
    ("\u03c2@example.com/foo", ("\u03c2", "example.com", "foo")),
    ("king@example.com/\u265a", ("king", "example.com", "\u265a")),
    ("example.com", (None, "example.com", None)),
    ("example.com/foobar", (None, "example.com", "foobar")),
    ("a.example.com/b@example.net", (None, "a.example.com", "b@example.net")),
]

# Table 2 (invalid JIDs).
RFC_INVALID = [
    '"juliet"@example.com',  # quotation marks are excluded from localparts
    "foo bar@example.com",  # space in the localpart
    "henry\u2163@example.com",  # ROMAN NUMERAL FOUR: compatibility character
    "\u265a@example.com",  # BLACK CHESS KING: symbol in the localpart
    "juliet@",  # no domainpart
    "/foobar",  # no domainpart
]


def parts(j: JID) -> tuple[str | None, str, str | None]:
    return (j.local, j.domain, j.resource)


@pytest.mark.parametrize(("s", "expected"), RFC_VALID)
def test_rfc7622_valid(s: str, expected: tuple[str | None, str, str | None]) -> None:
    j = JID.parse(s)
    assert parts(j) == expected
    # Prepared forms are stable: parsing the output gives the same JID.
    assert JID.parse(str(j)) == j


@pytest.mark.parametrize("s", RFC_INVALID)
def test_rfc7622_invalid(s: str) -> None:
    with pytest.raises(JIDError) as exc_info:
        JID.parse(s)
    err = exc_info.value
    assert isinstance(err, StanzaError)
    assert err.condition == "jid-malformed"
    assert err.type == "modify"


# --- case mapping and Unicode --------------------------------------------------------------


def test_case_mapping() -> None:
    j = JID.parse("Juliet@Example.COM/Balcony")
    assert str(j) == "juliet@example.com/Balcony"
    assert parts(j) == ("juliet", "example.com", "Balcony")
    assert j == JID.parse("juliet@example.com/Balcony")
    assert j != JID.parse("juliet@example.com/balcony")  # resources are case-sensitive


@pytest.mark.parametrize(
    ("s", "local"),
    [
        ("\u03c0@example.com", "\u03c0"),  # π
        ("\u03a3\u0391\u0392@example.com", "\u03c3\u03b1\u03b2"),  # ΣΑΒ -> σαβ
        ("\u0391\u0392\u03a3@example.com", "\u03b1\u03b2\u03c2"),  # final sigma in context
        ("\u00c9LODIE@example.com", "\u00e9lodie"),  # ÉLODIE
        ("e\u0301@example.com", "\u00e9"),  # NFC
        ("\u30e6\u30fc\u30b6\u30fc@example.com", "\u30e6\u30fc\u30b6\u30fc"),  # ユーザー
        ("\u0627\u0644@example.com", "\u0627\u0644"),  # RTL label
        ("\uff2a\uff35\uff2c\uff29\uff25\uff34@example.com", "juliet"),  # fullwidth JULIET
    ],
)
def test_unicode_localparts(s: str, local: str) -> None:
    assert JID.parse(s).local == local


@pytest.mark.parametrize(
    "local",
    [
        "\ufb00",  # ligature ff (compatibility)
        "x\u00b2",  # superscript two
        "a\u00a0b",  # no-break space
        "a\u00adb",  # soft hyphen (nodeprep mapped it to nothing)
        "a\u200bb",  # zero width space
        "a\u0627",  # bidi rule: LTR then RTL
        "\uff21\uff22\uff20",  # fullwidth "AB@": width-maps to "ab@", then excluded
        "a\u0007b",  # control
        "a\ud800",  # lone surrogate
    ],
)
def test_unicode_localparts_rejected(local: str) -> None:
    with pytest.raises(JIDError):
        prep_localpart(local)


def test_unicode_resourcepart() -> None:
    # OpaqueString: no case or width mapping, non-ASCII spaces become U+0020, NFC.
    assert prep_resourcepart("\uff2a\uff35") == "\uff2a\uff35"
    assert prep_resourcepart("a\u00a0b\u3000c") == "a b c"
    assert prep_resourcepart("e\u0301") == "\u00e9"
    assert prep_resourcepart("\u2163") == "\u2163"
    with pytest.raises(JIDError):
        prep_resourcepart("a\tb")
    with pytest.raises(JIDError):
        prep_resourcepart("a\u200bb")
    with pytest.raises(JIDError):
        prep_resourcepart("a\ud800")


# --- splitting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        ("juliet@example.com/a@b/c", ("juliet", "example.com", "a@b/c")),
        ("example.com/a@b", (None, "example.com", "a@b")),
        ("example.com//", (None, "example.com", "/")),
        ("user@example.com/@", ("user", "example.com", "@")),
        ("user@example.com/ ", ("user", "example.com", " ")),  # a lone space is a resource
        ("user@example.com/ a ", ("user", "example.com", " a ")),
        ("server/resource@foo/bar", (None, "server", "resource@foo/bar")),
    ],
)
def test_resource_with_at_and_slash(s: str, expected: tuple[str | None, str, str | None]) -> None:
    assert parts(JID.parse(s)) == expected


@pytest.mark.parametrize(
    "s",
    [
        "",
        "@",
        "/",
        "@/",
        "@example.com",
        "example.com/",
        "user@example.com/",
        "user@/res",
        "/res",
        "user@host@example.com",  # second "@" lands in the domainpart
        "a@b@c/d",
    ],
)
def test_empty_or_misplaced_parts(s: str) -> None:
    with pytest.raises(JIDError):
        JID.parse(s)


# --- lengths -------------------------------------------------------------------------------


def test_overlong_localpart() -> None:
    assert JID.parse("a" * 1023 + "@example.com").local == "a" * 1023
    assert prep_localpart("\u00e9" * 511) == "\u00e9" * 511  # 1022 octets
    with pytest.raises(JIDError):
        JID.parse("a" * 1024 + "@example.com")
    with pytest.raises(JIDError):
        prep_localpart("\u00e9" * 512)  # 1024 octets
    with pytest.raises(JIDError):
        prep_localpart("\u00c9" * 512)  # mapped to é: counted after preparation
    with pytest.raises(JIDError):
        prep_localpart("\u00e9" * 100_000)


def test_overlong_resourcepart() -> None:
    assert JID.parse("u@example.com/" + "r" * 1023).resource == "r" * 1023
    assert prep_resourcepart("\u265a" * 341) == "\u265a" * 341  # 1023 octets
    with pytest.raises(JIDError):
        JID.parse("u@example.com/" + "r" * 1024)
    with pytest.raises(JIDError):
        prep_resourcepart("\u265a" * 342)  # 1026 octets


def test_overlong_domainpart() -> None:
    label63 = "a" * 63
    assert prep_domainpart(label63 + ".com") == label63 + ".com"
    with pytest.raises(JIDError):
        prep_domainpart("a" * 64 + ".com")
    with pytest.raises(JIDError):
        prep_domainpart("\u00fc" * 60 + ".com")  # A-label longer than 63 octets
    # 16 labels of 63 + 15 dots = 1023 octets: fine; one more octet is not.
    longest = ".".join([label63] * 16)
    assert len(longest) == 1023
    assert JID.parse("u@" + longest).domain == longest
    assert prep_domainpart(longest + ".") == longest  # trailing dot does not count
    with pytest.raises(JIDError):
        JID.parse("u@" + longest + "a")
    with pytest.raises(JIDError):
        prep_domainpart(longest[:-1] + "\u00fc")  # 1024 octets in UTF-8


# --- excluded characters -------------------------------------------------------------------


@pytest.mark.parametrize("ch", list("\"&'/:<>@"))
def test_localpart_excluded_characters(ch: str) -> None:
    with pytest.raises(JIDError):
        prep_localpart(f"a{ch}b")
    with pytest.raises(JIDError):
        JID.make(f"a{ch}b", "example.com")


@pytest.mark.parametrize("ch", list("!#$%()*+,-.;=?[\\]^_`{|}~0123456789"))
def test_localpart_other_ascii_symbols_allowed(ch: str) -> None:
    assert prep_localpart(f"a{ch}B") == f"a{ch}b"


@pytest.mark.parametrize("s", [" juliet", "juliet ", "jul iet", " ", "a\tb", "a\x7fb"])
def test_localpart_spaces_and_controls_invalid(s: str) -> None:
    with pytest.raises(JIDError):
        prep_localpart(s)
    with pytest.raises(JIDError):
        JID.parse(s + "@example.com")


@pytest.mark.parametrize("s", ["a\x00b", "a\nb", "a\x7f", "a\u0085b", "a\u2028b"])
def test_resourcepart_controls_invalid(s: str) -> None:
    with pytest.raises(JIDError):
        prep_resourcepart(s)


# --- domainparts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        ("example.com", "example.com"),
        ("EXAMPLE.Com", "example.com"),
        ("example.com.", "example.com"),
        ("localhost", "localhost"),
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("1.2.3.4", "1.2.3.4"),
        ("192.168.0.1.", "192.168.0.1"),
        ("123", "123"),
        ("[::1]", "[::1]"),
        ("[2001:DB8:0:0::1]", "[2001:db8::1]"),
        ("[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]"),  # RFC 5952 §5: mixed notation
        ("[::FFFF:c000:201]", "[::ffff:192.0.2.1]"),
        ("xn--bcher-kva.example", "b\u00fccher.example"),
        ("XN--BCHER-KVA.example", "b\u00fccher.example"),
        ("B\u00dcCHER.example", "b\u00fccher.example"),
        ("fu\u00dfball.example", "fu\u00dfball.example"),  # IDNA2008 keeps ß
        ("\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\u3002\uff43\uff4f\uff4d", "example.com"),
        ("example\uff0ecom", "example.com"),
        ("example\uff61com", "example.com"),
        ("\u4f8b\u3048.\u30c6\u30b9\u30c8", "\u4f8b\u3048.\u30c6\u30b9\u30c8"),  # 例え.テスト
    ],
)
def test_domainpart_valid(s: str, expected: str) -> None:
    assert prep_domainpart(s) == expected
    assert JID.parse(f"user@{s}/r").domain == expected


@pytest.mark.parametrize(
    "s",
    [
        "",
        ".",
        "..",
        "example.com..",
        ".example.com",
        "example..com",
        "-example.com",
        "example-.com",
        "ab--cd.com",  # reserved R-LDH label
        "xn--.com",
        "xn--abc.com",  # not valid Punycode for a U-label
        "under_score.com",
        "exa mple.com",
        "example.com/x",  # as a domainpart; in a JID the "/" would start the resource
        "a@b",
        "999.0.0.1",
        "010.0.0.1",  # leading zeros: ambiguous, rejected
        "1.2.3.256",
        "[::1",
        "[]",
        "[1.2.3.4]",
        "[::1%eth0]",
        "[v1.fe]",
        "[::g]",
        "\u2665.com",  # symbol
        "\u2163.com",  # compatibility character (not mapped by RFC 5895)
    ],
)
def test_domainpart_invalid(s: str) -> None:
    with pytest.raises(JIDError):
        prep_domainpart(s)
    if "/" not in s:
        with pytest.raises(JIDError):
            JID.parse(f"user@{s}/r")


def test_trailing_dot() -> None:
    assert JID.parse("juliet@example.com./balcony") == JID.parse("juliet@example.com/balcony")
    assert JID.parse("example.com.") == JID.parse("example.com")
    assert str(JID.parse("Example.COM.")) == "example.com"
    with pytest.raises(JIDError):
        JID.parse("juliet@example.com../balcony")


def test_ip_literals() -> None:
    assert str(JID.parse("user@[2001:DB8::1]/res")) == "user@[2001:db8::1]/res"
    assert JID.parse("user@[::1]") == JID.parse("user@[0:0::1]")
    assert str(JID.parse("user@127.0.0.1/r")) == "user@127.0.0.1/r"
    assert JID.parse("[::1]").is_domain


# --- the JID object ------------------------------------------------------------------------


def test_equality_and_hash() -> None:
    a = JID.parse("Juliet@Example.com/Balcony")
    b = JID.make("juliet", "example.com", "Balcony")
    c = JID("juliet", "example.com", "Balcony")
    assert a == b == c
    assert hash(a) == hash(b) == hash(c)
    assert len({a, b, c}) == 1
    assert {a: 1}[c] == 1
    assert a != JID.parse("juliet@example.com")
    assert a != JID.parse("juliet@example.com/balcony")
    assert JID(None, "example.com") != JID("example.com", "example.com")
    assert a != "juliet@example.com/Balcony"  # a JID is not a string
    assert (a == "juliet@example.com/Balcony") is False


def test_bare_and_with_resource() -> None:
    full = JID.parse("juliet@example.com/balcony")
    bare = full.bare
    assert str(bare) == "juliet@example.com"
    assert bare.is_bare and not full.is_bare
    assert bare.bare is bare  # already bare: returns self
    assert full.bare_str == "juliet@example.com" == bare.bare_str
    assert not bare.is_domain
    other = bare.with_resource("orchard")
    assert str(other) == "juliet@example.com/orchard"
    assert other.bare == bare
    assert full.with_resource("r\u00a0x").resource == "r x"  # prepared
    assert full.with_resource("a/b@c").resource == "a/b@c"
    with pytest.raises(JIDError):
        full.with_resource("")
    with pytest.raises(JIDError):
        full.with_resource("a\x00b")

    domain = JID.parse("example.com/res")
    assert not domain.is_domain and domain.bare.is_domain
    assert domain.bare_str == "example.com"
    assert str(domain.bare.with_resource("x")) == "example.com/x"


def test_make() -> None:
    j = JID.make("Juliet", "Example.COM.", "Balcony")
    assert parts(j) == ("juliet", "example.com", "Balcony")
    assert JID.make(None, "example.com") == JID.parse("example.com")
    assert JID.make(None, "example.com", "r") == JID.parse("example.com/r")
    for bad in (("", "example.com", None), ("a", "", None), ("a", "example.com", "")):
        with pytest.raises(JIDError):
            JID.make(*bad)


def test_init_does_not_prepare() -> None:
    j = JID("Juliet", "Example.com", "r")
    assert str(j) == "Juliet@Example.com/r"
    assert j != JID.parse("juliet@example.com/r")


def test_str_and_repr() -> None:
    j = JID.parse("juliet@example.com/balcony")
    assert str(j) == "juliet@example.com/balcony"
    assert repr(j) == "JID('juliet@example.com/balcony')"
    assert str(JID.parse("example.com")) == "example.com"
    assert str(JID.parse("example.com/r")) == "example.com/r"


def test_immutable() -> None:
    j = JID.parse("juliet@example.com/balcony")
    with pytest.raises(AttributeError):
        j.local = "romeo"
    with pytest.raises(AttributeError):
        j.other = 1
    with pytest.raises(AttributeError):
        del j.resource
    assert str(j) == "juliet@example.com/balcony"


def test_pickle_and_copy() -> None:
    j = JID.parse("juliet@example.com/balcony")
    assert pickle.loads(pickle.dumps(j)) == j
    assert copy.copy(j) is j
    assert copy.deepcopy(j) is j


def test_parse_is_cached() -> None:
    s = "cached-user@example.com/res"
    assert JID.parse(s) is JID.parse(s)
    long_s = "u@example.com/" + "r" * 1000  # too long for the cache, still parsed
    assert JID.parse(long_s) == JID.parse(long_s)


# --- fast path == PRECIS / IDNA path ---------------------------------------------------------

_ASCII_PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))
_ALPHABET = (
    "abcdefghijklmnopqrstuvwxyz" * 3
    + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" * 2
    + "0123456789" * 2
    + "-._" * 3
    + _ASCII_PRINTABLE
    + "\x00\t\n\x7f"
)


def _random_ascii(rng: random.Random, max_len: int = 12) -> str:
    n = rng.choice([0, 1, 1, 2, 3, 5, 8, max_len, rng.randint(0, max_len)])
    return "".join(rng.choice(_ALPHABET) for _ in range(n))


def _random_domain(rng: random.Random) -> str:
    labels = []
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        if r < 0.05:
            label = ""
        elif r < 0.1:
            label = "xn--" + "".join(rng.choice("abcdefghijkl0123456789-") for _ in range(5))
        elif r < 0.15:
            label = rng.choice(["a" * 63, "b" * 64, "ab--cd", "-a", "a-", "123", "256", "01"])
        else:
            chars = "abcXYZ019-" if rng.random() < 0.8 else _ALPHABET
            label = "".join(rng.choice(chars) for _ in range(rng.randint(1, 8)))
        labels.append(label)
    d = ".".join(labels)
    if rng.random() < 0.15:
        d += "."
    if rng.random() < 0.05:
        d = ".".join(str(rng.choice([0, 1, 10, 255, 256, 999])) for _ in range(4))
    return d


def _outcome(fn: Callable[[str], object], s: str) -> tuple[str, object]:
    try:
        return ("ok", fn(s))
    except JIDError:
        return ("error", None)


def test_fast_localpart_matches_precis() -> None:
    rng = random.Random(7622)
    accepted = 0
    for _ in range(3000):
        s = _random_ascii(rng)
        fast_ok = jid_mod._LOCAL_ASCII_RE.fullmatch(s) is not None
        slow = _outcome(jid_mod._prep_localpart_precis, s)
        assert fast_ok == (slow[0] == "ok"), s
        if fast_ok:
            accepted += 1
            assert prep_localpart(s) == s.lower() == slow[1], s
        assert _outcome(prep_localpart, s) == slow, s
    assert accepted > 500


def test_fast_resourcepart_matches_precis() -> None:
    rng = random.Random(8265)
    accepted = 0
    for _ in range(3000):
        s = _random_ascii(rng)
        fast_ok = jid_mod._RESOURCE_ASCII_RE.fullmatch(s) is not None
        slow = _outcome(jid_mod._prep_resourcepart_precis, s)
        assert fast_ok == (slow[0] == "ok"), s
        if fast_ok:
            accepted += 1
            assert prep_resourcepart(s) == s == slow[1], s
        assert _outcome(prep_resourcepart, s) == slow, s
    assert accepted > 500


def _reference_domainpart(s: str) -> str:
    """prep_domainpart without the ASCII fast path."""
    if s.endswith("."):
        s = s[:-1]
    if s.startswith("["):
        return jid_mod._prep_ipv6_literal(s)
    return jid_mod._prep_domainpart_idna(s)


def test_fast_domainpart_matches_idna() -> None:
    rng = random.Random(5891)
    fast_accepted = 0
    for _ in range(3000):
        s = _random_domain(rng) if rng.random() < 0.9 else _random_ascii(rng)
        expected = _outcome(_reference_domainpart, s)
        assert _outcome(prep_domainpart, s) == expected, s
        d = s[:-1] if s.endswith(".") else s
        if jid_mod._DOMAIN_ASCII_RE.fullmatch(d.lower()) and "--" not in d:
            fast_accepted += expected[0] == "ok"
    assert fast_accepted > 500


def _reference_parse(s: str) -> tuple[str | None, str, str | None]:
    """RFC 7622 §3.1 split, every part through precis_i18n / idna."""
    head, sep, resource = s.partition("/")
    res = jid_mod._prep_resourcepart_precis(resource) if sep else None
    local, at, domain = head.partition("@")
    if not at:
        return (None, _reference_domainpart(head), res)
    return (jid_mod._prep_localpart_precis(local), _reference_domainpart(domain), res)


def test_fast_parse_matches_reference() -> None:
    rng = random.Random(6120)
    accepted = 0
    for _ in range(3000):
        s = _random_domain(rng)
        if rng.random() < 0.8:
            s = _random_ascii(rng) + "@" + s
        if rng.random() < 0.6:
            s = s + "/" + _random_ascii(rng)
        expected = _outcome(_reference_parse, s)
        got = _outcome(lambda x: parts(jid_mod._parse(x)), s)
        assert got == expected, s
        accepted += got[0] == "ok"
    assert accepted > 500


@pytest.mark.parametrize(
    "s",
    [
        "Juliet@Example.COM/Balcony",
        "\u03a3\u0391\u0392@\uff25xample.com/\u00a0x",
        "user@xn--bcher-kva.example./r",
        "user@[2001:DB8::1]/r",
    ],
)
def test_preparation_is_idempotent(s: str) -> None:
    j = JID.parse(s)
    assert JID.make(j.local, j.domain, j.resource) == j
    assert JID.parse(str(j)) == j
