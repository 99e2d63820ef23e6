"""Whole numbers read from the wire: ASCII digits only, range-checked.

``str.isdigit()`` says yes to '²' (which ``int()`` then refuses: an internal error) and
``int()`` itself takes '1_0' and the digits of every script (ARABIC-INDIC DIGIT ONE is 1).
An XML Schema integer is ASCII digits after an optional sign (XSD Part 2 §3.3.13), around
it only XML whitespace. Every number taken from a stanza, a BOSH body or a URL goes through
``parse_int``; handlers use ``stanza_int``, which answers a malformed or out-of-range value
with a stanza error (bad-request by default).
"""

from __future__ import annotations

import re

from xmpp_server.errors import StanzaError

UINT32 = 2**32 - 1  # xs:unsignedInt
_MAX_LENGTH = 64  # leading zeros are allowed; anything longer is no number we use
_DIGITS = re.compile(r"[+-]?[0-9]+")
_SPACE = " \t\r\n"  # XML whitespace (XSD whiteSpace="collapse" for integer types)


def parse_int(value: str, low: int = 0, high: int = UINT32) -> int:
    """``value`` as an integer from ``low`` to ``high``; ValueError otherwise."""
    text = value.strip(_SPACE)
    if len(text) > _MAX_LENGTH or not _DIGITS.fullmatch(text):
        raise ValueError(f"expected a whole number from {low} to {high}")
    number = int(text)
    if not low <= number <= high:
        raise ValueError(f"expected a whole number from {low} to {high}")
    return number


def stanza_int(value: str, name: str, low: int = 0, high: int = UINT32,
               condition: str = "bad-request") -> int:
    """``parse_int`` for handlers: a bad value is a stanza error that names ``name``."""
    try:
        return parse_int(value, low, high)
    except ValueError as exc:
        raise StanzaError(condition, f"{name}: {exc}") from None
