"""XEP-0045 §7.2.14: the discussion history a room sends to a joining occupant.

The room keeps its last ``history_length`` messages, each with a XEP-0203 <delay/> from the
room, serialised once. A joining client may ask for less with
``<history maxchars= maxstanzas= seconds= since=/>``: every limit it gives applies, and the
room's own limit (``muc#maxhistoryfetch``) always does. maxchars counts the characters of the
whole stanzas sent, as the XEP says.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from xml.sax.saxutils import escape

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.modules.muc.fanout import Template
from xmpp_server.numbers import stanza_int

_QUOTE = {'"': "&quot;"}


def xep0082(when: datetime) -> str:
    """A XEP-0082 DateTime in UTC with milliseconds."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_xep0082(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


class Entry:
    __slots__ = ("chars", "stamp", "stanza_id", "template")

    def __init__(self, stanza_id: str, stamp: datetime, template: Template) -> None:
        self.stanza_id = stanza_id
        self.stamp = stamp
        self.template = template
        self.chars = len(template.head) + len(template.tail)


def delayed(template: Template, room: str, stamp: datetime) -> Template:
    """The history form of a broadcast message: with the room's XEP-0203 <delay/>."""
    delay = (f'<delay xmlns="{ns.DELAY}" from="{escape(room, _QUOTE)}" '
             f'stamp="{xep0082(stamp)}"/>').encode()
    return template.with_child(delay)


class History:
    def __init__(self, length: int) -> None:
        self.entries: deque[Entry] = deque(maxlen=max(0, length))

    def resize(self, length: int) -> None:
        if length != self.entries.maxlen:
            self.entries = deque(self.entries, maxlen=max(0, length))

    def add(self, stanza_id: str, stamp: datetime, template: Template) -> None:
        if self.entries.maxlen:
            self.entries.append(Entry(stanza_id, stamp, template))

    def replace(self, stanza_id: str, template: Template) -> None:
        """A moderated message becomes its tombstone (XEP-0425)."""
        for entry in self.entries:
            if entry.stanza_id == stanza_id:
                entry.template = template
                entry.chars = len(template.head) + len(template.tail)
                return

    def select(self, request: HistoryRequest, max_fetch: int,
               now: datetime | None = None) -> list[Template]:
        """What to send a joining occupant, oldest first."""
        max_stanzas = max_fetch
        max_chars = request.max_chars
        after: datetime | None = None
        if request.max_stanzas is not None:
            max_stanzas = min(max_stanzas, request.max_stanzas)
        if request.seconds is not None:
            after = (now or datetime.now(UTC)) - timedelta(seconds=request.seconds)
        when = request.since
        if when is not None and (after is None or when > after):
            after = when
        picked: list[Template] = []
        chars = 0
        for entry in _newest_first(self.entries):
            if len(picked) >= max_stanzas:
                break
            if after is not None and entry.stamp < after:
                break
            if max_chars is not None:
                chars += entry.chars
                if chars > max_chars:
                    break
            picked.append(entry.template)
        picked.reverse()
        return picked


def _newest_first(entries: deque[Entry]) -> Iterator[Entry]:
    return reversed(entries)


class HistoryRequest(NamedTuple):
    """The limits of a joining client's <history/>; None: not given."""

    max_chars: int | None = None
    max_stanzas: int | None = None
    seconds: int | None = None
    since: datetime | None = None


def parse_request(request: etree._Element | None) -> HistoryRequest:
    """<history/>'s limits; a malformed number is a bad-request (before the join happens)."""
    if request is None:
        return HistoryRequest()
    since = request.get("since")
    return HistoryRequest(_int(request, "maxchars"), _int(request, "maxstanzas"),
                          _int(request, "seconds"), parse_xep0082(since) if since else None)


def _int(request: etree._Element, name: str) -> int | None:
    value = request.get(name)
    return None if value is None else stanza_int(value, f"<history/> {name}")
