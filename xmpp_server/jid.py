"""XMPP addresses (JIDs) per RFC 7622.

A JID is ``[localpart@]domainpart[/resourcepart]``. Each part is prepared and enforced:

* localpart: PRECIS IdentifierClass, "UsernameCaseMapped" profile (RFC 8265), plus the
  RFC 7622 §3.3.1 exclusion of ``" & ' / : < > @`` (checked on the *prepared* string, so a
  fullwidth commercial at, U+FF20, that width-maps to ``@`` is rejected too);
* domainpart: one trailing dot stripped, then IDNA2008 (RFC 5890-5892) with the RFC 5895
  mappings (width mapping, ideographic full stops, lowercase, NFC); A-labels are converted
  to U-labels; IPv4 addresses and bracketed IPv6 literals are accepted (IPv6 is normalised
  to its RFC 5952 form, IPv4-mapped ones in mixed notation);
* resourcepart: PRECIS FreeformClass, "OpaqueString" profile (RFC 8265);

and each prepared part is 1..1023 octets of UTF-8. Parsing splits on the first ``/`` (the
resource may contain ``@`` and ``/``), then on the first ``@`` before it.

Pure-ASCII parts take a fast path (a regular expression and ``str.lower``) that gives the same
result as precis_i18n / idna; ``tests/xmpp_server/test_jid.py`` checks that on generated input.
Anything else goes through precis_i18n and idna. Failures raise ``JIDError`` (jid-malformed).

Mixed forms: peers and old clients may still send RFC 6122 stringprep (nodeprep/resourceprep,
IDNA2003 nameprep) JIDs. We prepare every JID that enters with RFC 7622 and compare prepared
forms, so JIDs that stringprep and PRECIS both accept and map the same way (all ASCII, most
scripts) match. What precis_i18n actually does with the differences: in the localpart,
fullwidth/halfwidth characters (U+FF01..U+FFEE) are width-mapped by UsernameCaseMapped, so
fullwidth "JULIET" becomes "juliet" just as nodeprep's NFKC made it; every other compatibility
character that nodeprep NFKC-mapped (U+FB00 ligature ff, U+2163 roman numeral four, U+00B2
superscript two, U+01C5 titlecase dz, U+00A0 no-break space, ...) and the characters nodeprep
mapped to nothing (U+00AD soft hyphen, U+200B zero width space) are rejected, so such JIDs are
answered with jid-malformed rather than silently mapped differently. Two differences cannot be
detected because both specs accept the input: the localpart is lowercased, not case-folded, so
U+00DF sharp s and U+03C2 final sigma stay distinct from "ss" and U+03C3 sigma (nodeprep folded
them); and OpaqueString does not NFKC-map resources (fullwidth letters or U+2163 stay as they
are; only non-ASCII spaces become U+0020) where resourceprep produced their ASCII forms.
Likewise IDNA2008 keeps U+00DF in domain labels where IDNA2003 mapped it to "ss".
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from functools import lru_cache
from typing import Any, Final

import idna
from precis_i18n import get_profile

from xmpp_server.errors import JIDError

__all__ = ["JID", "prep_domainpart", "prep_localpart", "prep_resourcepart"]

MAX_PART_OCTETS: Final = 1023

_USERNAME = get_profile("UsernameCaseMapped")
_OPAQUE = get_profile("OpaqueString")

# RFC 7622 §3.3.1: allowed by IdentifierClass, excluded from localparts.
_LOCAL_EXCLUDED: Final = frozenset("\"&'/:<>@")

# ASCII fast paths. Printable ASCII (0x21..0x7E) is PVALID in IdentifierClass; minus the
# excluded characters that leaves: ! #$% ( ) * + , - . 0-9 ; = ? A-Z [ \ ] ^ _ ` a-z { | } ~
_LOCAL_ASCII = r"[!#-%(-.0-9;=?A-~]{1,1023}"
# FreeformClass allows ASCII 0x20..0x7E; OpaqueString maps nothing for ASCII.
_RESOURCE_ASCII = r"[ -~]{1,1023}"
# NR-LDH labels: letters/digits/hyphens, 1..63 octets, no hyphen at either end. Labels
# containing "--" (A-labels "xn--", reserved R-LDH labels) are left to idna.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_LABEL_ANY_CASE = r"(?!-)[a-zA-Z0-9-]{1,63}(?<!-)"
_LOCAL_ASCII_RE: Final = re.compile(_LOCAL_ASCII)
_RESOURCE_ASCII_RE: Final = re.compile(_RESOURCE_ASCII)
_DOMAIN_ASCII_RE: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# The whole-JID fast path for the common case (all ASCII, no IP literal): the same three
# patterns in one match, the domain in either case and with an optional trailing dot.
_JID_ASCII_RE: Final = re.compile(
    rf"(?:({_LOCAL_ASCII})@)?({_LABEL_ANY_CASE}(?:\.{_LABEL_ANY_CASE})*)\.?(?:/({_RESOURCE_ASCII}))?"
)
# Four dot-separated numbers look like an IPv4 address and must be one (no "999.0.0.1", no
# leading zeros); other all-numeric names are left to the label rules.
_DOTTED_QUAD_RE: Final = re.compile(r"[0-9]+(?:\.[0-9]+){3}")

# RFC 5895 §2 mappings other than width/case/NFC: full stops to U+002E.
_FULL_STOPS: Final = {0x3002: ".", 0xFF0E: ".", 0xFF61: "."}

# Only JIDs up to this many characters go into the parse cache, so that a peer sending many
# distinct, huge (but valid) JIDs cannot make the cache hold gigabytes.
_CACHE_MAX_LEN: Final = 256
# Input longer than this cannot prepare to <= 1023 octets in any realistic way; reject it
# before running the (slower) PRECIS/IDNA code over it.
_MAX_INPUT_CHARS: Final = 4 * MAX_PART_OCTETS


def _error_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) else str(exc)


def _check_octets(what: str, s: str) -> str:
    n = len(s.encode("utf-8"))
    if n == 0:
        raise JIDError(f"empty {what}")
    if n > MAX_PART_OCTETS:
        raise JIDError(f"{what} longer than {MAX_PART_OCTETS} octets")
    return s


# --- localpart -----------------------------------------------------------------------------


def _prep_localpart_precis(s: str) -> str:
    """The reference (slow) path: PRECIS UsernameCaseMapped + RFC 7622 exclusions."""
    if not s:
        raise JIDError("empty localpart")
    if len(s) > _MAX_INPUT_CHARS:
        raise JIDError(f"localpart longer than {MAX_PART_OCTETS} octets")
    try:
        out: str = _USERNAME.enforce(s)
    except UnicodeError as exc:
        raise JIDError(f"invalid localpart: {_error_reason(exc)}") from None
    if not _LOCAL_EXCLUDED.isdisjoint(out):
        raise JIDError("invalid localpart: contains one of \" & ' / : < > @")
    return _check_octets("localpart", out)


def prep_localpart(s: str) -> str:
    """Prepare and enforce a localpart (RFC 7622 §3.3); raise JIDError."""
    if s.isascii() and _LOCAL_ASCII_RE.fullmatch(s):
        return s.lower()
    return _prep_localpart_precis(s)


# --- resourcepart --------------------------------------------------------------------------


def _prep_resourcepart_precis(s: str) -> str:
    """The reference (slow) path: PRECIS OpaqueString."""
    if not s:
        raise JIDError("empty resourcepart")
    if len(s) > _MAX_INPUT_CHARS:
        raise JIDError(f"resourcepart longer than {MAX_PART_OCTETS} octets")
    try:
        out: str = _OPAQUE.enforce(s)
    except UnicodeError as exc:
        raise JIDError(f"invalid resourcepart: {_error_reason(exc)}") from None
    return _check_octets("resourcepart", out)


def prep_resourcepart(s: str) -> str:
    """Prepare and enforce a resourcepart (RFC 7622 §3.4); raise JIDError."""
    if s.isascii() and _RESOURCE_ASCII_RE.fullmatch(s):
        return s
    return _prep_resourcepart_precis(s)


# --- domainpart ----------------------------------------------------------------------------


def _prep_ipv6_literal(s: str) -> str:
    if not s.endswith("]") or not s.isascii():
        raise JIDError("invalid domainpart: malformed IP literal")
    inner = s[1:-1]
    # ipaddress accepts "%zone" scope ids (RFC 4007); URIs/JIDs without RFC 6874 do not.
    if "%" in inner:
        raise JIDError("invalid domainpart: malformed IP literal")
    try:
        addr = ipaddress.IPv6Address(inner)
    except ValueError:
        raise JIDError("invalid domainpart: malformed IPv6 literal") from None
    mapped = addr.ipv4_mapped
    if mapped is not None:
        # RFC 5952 §5: an IPv4-mapped address is written in mixed notation (::ffff:192.0.2.1);
        # ipaddress does so only from Python 3.13 on, so the form is not left to the version.
        return f"[::ffff:{mapped}]"
    return f"[{addr.compressed}]"


def _check_ipv4(d: str) -> str:
    """A dotted quad must be a valid IPv4 address (RFC 3986 IPv4address)."""
    if _DOTTED_QUAD_RE.fullmatch(d):
        try:
            ipaddress.IPv4Address(d)
        except ValueError:
            raise JIDError("invalid domainpart: malformed IPv4 address") from None
    return d


def _rfc5895_map(s: str) -> str:
    out = []
    for ch in s:
        cp = ord(ch)
        if cp < 0x80:
            out.append(ch)
            continue
        mapped = _FULL_STOPS.get(cp)
        if mapped is None:
            decomp = unicodedata.decomposition(ch)
            if decomp.startswith(("<wide> ", "<narrow> ")):
                mapped = chr(int(decomp.split(" ", 1)[1], 16))
                mapped = _FULL_STOPS.get(ord(mapped), mapped)  # U+FF61 -> U+3002 -> "."
            else:
                mapped = ch
        out.append(mapped)
    return unicodedata.normalize("NFC", "".join(out).lower())


def _prep_domainpart_idna(s: str) -> str:
    """The reference (slow) path; expects the trailing dot already stripped."""
    if not s:
        raise JIDError("empty domainpart")
    if len(s) > _MAX_INPUT_CHARS:
        raise JIDError(f"domainpart longer than {MAX_PART_OCTETS} octets")
    d = _rfc5895_map(s)
    labels = d.split(".")
    for i, label in enumerate(labels):
        if not label:
            raise JIDError("invalid domainpart: empty label")
        try:
            ulabel = idna.ulabel(label)  # A-label -> U-label; validates either form
            alabel = idna.alabel(ulabel).decode("ascii")  # checks the 63-octet limit
        except (idna.IDNAError, UnicodeError) as exc:
            raise JIDError(f"invalid domainpart: {exc}") from None
        if label.startswith("xn--") and alabel != label:
            # RFC 5891 §5.4: an A-label must round-trip exactly.
            raise JIDError("invalid domainpart: non-canonical A-label")
        labels[i] = ulabel
    return _check_ipv4(_check_octets("domainpart", ".".join(labels)))


def prep_domainpart(s: str) -> str:
    """Prepare and enforce a domainpart (RFC 7622 §3.2); raise JIDError."""
    if s.endswith("."):
        s = s[:-1]  # RFC 7622 §3.2: strip one trailing dot before anything else
    if not s:
        raise JIDError("empty domainpart")
    if s[0] == "[":
        return _prep_ipv6_literal(s)
    if s.isascii():
        d = s.lower()
        if len(d) <= MAX_PART_OCTETS and "--" not in d and _DOMAIN_ASCII_RE.fullmatch(d):
            return _check_ipv4(d) if d[-1] <= "9" else d
    return _prep_domainpart_idna(s)


# --- JID -----------------------------------------------------------------------------------


class JID:
    """An immutable, prepared XMPP address. Equality and hash are on (local, domain, resource)."""

    __slots__ = ("_bare", "_full", "_hash", "domain", "local", "resource")

    local: str | None
    domain: str
    resource: str | None
    _bare: str
    _full: str
    _hash: int

    def __init__(self, local: str | None, domain: str, resource: str | None = None) -> None:
        """Build from parts that are ALREADY prepared; nothing is checked (internal use)."""
        _set_local(self, local)
        _set_domain(self, domain)
        _set_resource(self, resource)
        bare = domain if local is None else f"{local}@{domain}"
        full = bare if resource is None else f"{bare}/{resource}"
        _set_bare(self, bare)
        _set_full(self, full)
        _set_hash(self, hash(full))

    @classmethod
    def parse(cls, s: str) -> JID:
        """Parse, prepare and validate a JID string; raise JIDError. Results are cached."""
        if len(s) <= _CACHE_MAX_LEN:
            return _parse_cached(s)
        return _parse(s)

    @classmethod
    def make(cls, local: str | None, domain: str, resource: str | None = None) -> JID:
        """Build from unprepared parts, preparing and validating each; raise JIDError."""
        return cls(
            None if local is None else prep_localpart(local),
            prep_domainpart(domain),
            None if resource is None else prep_resourcepart(resource),
        )

    @property
    def bare(self) -> JID:
        """This JID without its resource (``self`` if already bare)."""
        if self.resource is None:
            return self
        return JID(self.local, self.domain)

    @property
    def is_bare(self) -> bool:
        return self.resource is None

    @property
    def is_domain(self) -> bool:
        return self.local is None and self.resource is None

    @property
    def bare_str(self) -> str:
        return self._bare

    def with_resource(self, resource: str) -> JID:
        """The same bare JID with ``resource`` (prepared and validated; raise JIDError)."""
        return JID(self.local, self.domain, prep_resourcepart(resource))

    def __str__(self) -> str:
        return self._full

    def __repr__(self) -> str:
        return f"JID({self._full!r})"

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, JID):
            return NotImplemented
        return (
            self._hash == other._hash
            and self.domain == other.domain
            and self.local == other.local
            and self.resource == other.resource
        )

    def __hash__(self) -> int:
        return self._hash

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"JID is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"JID is immutable (cannot delete {name!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (JID, (self.local, self.domain, self.resource))

    def __copy__(self) -> JID:
        return self

    def __deepcopy__(self, memo: Any) -> JID:
        return self


# Slot setters that bypass the immutability guard in __setattr__ (used only by __init__).
_set_local = JID.__dict__["local"].__set__
_set_domain = JID.__dict__["domain"].__set__
_set_resource = JID.__dict__["resource"].__set__
_set_bare = JID.__dict__["_bare"].__set__
_set_full = JID.__dict__["_full"].__set__
_set_hash = JID.__dict__["_hash"].__set__


def _parse(s: str) -> JID:
    """Uncached parse: the whole-JID ASCII fast path, else the per-part route."""
    if s.isascii():
        m = _JID_ASCII_RE.fullmatch(s)
        if m is not None:
            local, domain, resource = m.groups()
            if len(domain) <= MAX_PART_OCTETS and "--" not in domain:
                domain = domain.lower()
                if domain[-1] <= "9":
                    _check_ipv4(domain)
                return JID(None if local is None else local.lower(), domain, resource)
    return _parse_parts(s)


def _parse_parts(s: str) -> JID:
    """RFC 7622 §3.1: split on the first "/", then on the first "@" before it; prepare parts."""
    slash = s.find("/")
    if slash < 0:
        head = s
        resource = None
    else:
        head = s[:slash]
        resource = prep_resourcepart(s[slash + 1 :])
    at = head.find("@")
    if at < 0:
        return JID(None, prep_domainpart(head), resource)
    return JID(prep_localpart(head[:at]), prep_domainpart(head[at + 1 :]), resource)


_parse_cached = lru_cache(maxsize=65536)(_parse)
